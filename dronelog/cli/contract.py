"""`dronelog contract`: the JSON Schema files of the public event contract."""

from pathlib import Path

import click


@click.group()
def contract() -> None:
    """The public event contract."""


@contract.command("export")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              default=Path("docs/schemas"), show_default=True)
@click.option("--check", is_flag=True, help="fail if the files differ from the models")
def contract_export(directory: Path, check: bool) -> None:
    """Write the JSON Schema files generated from the message models."""
    from dronelog.contract.schemas import render_schemas, write_schemas

    if check:
        stale = [name for name, text in render_schemas().items()
                 if not (directory / name).exists()
                 or (directory / name).read_text(encoding="utf-8") != text]
        if stale:
            raise click.ClickException(f"out of date: {', '.join(stale)}; run "
                                       "`dronelog contract export`")
        click.echo("schemas are current")
        return
    for path in write_schemas(directory):
        click.echo(f"wrote {path}")
