"""`dronelog sites`: the network's sites and routes."""

from pathlib import Path

import click

from dronelog.cli.common import writable_engine
from dronelog.config import Settings


@click.group()
def sites() -> None:
    """The network's sites and routes."""


@sites.command("import")
@click.argument("network_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def sites_import(settings: Settings, network_file: Path) -> None:
    """Import (or update) the sites and routes of a network (or scenario) file."""
    site_count, route_count = import_network_file(settings, network_file)
    click.echo(f"imported {site_count} sites and {route_count} routes from {network_file}")


def import_network_file(settings: Settings, network_file: Path) -> tuple[int, int]:
    from dronelog.network import NetworkFileError, load_network
    from dronelog.storage.network import import_network

    try:
        network = load_network(network_file)
    except NetworkFileError as error:
        raise click.ClickException(str(error)) from error
    return import_network(writable_engine(settings), network)
