"""`dronelog audit`: tamper evidence (docs/tamper-evidence.md)."""

import sys

import click

from dronelog.cli.common import existing_engine
from dronelog.config import Settings


@click.group()
def audit() -> None:
    """Tamper evidence: check the record's hash chains and seals."""


@audit.command("verify")
@click.option("--barcode", "barcodes", multiple=True, help="only these specimens' custody "
              "chains (repeatable); without it, the whole record")
@click.pass_obj
def audit_verify(settings: Settings, barcodes: tuple[str, ...]) -> None:
    """Check custody chains, the specimen registry, the audit log, the record seals and the
    sealed flights' telemetry; exit 1 at the first broken link."""
    from dronelog.storage import custody_chain, tamper_evidence

    with existing_engine(settings).connect() as connection:
        if barcodes:
            result = custody_chain.verify(connection, barcodes)
            click.echo(f"{result.specimens} specimens, {result.events} custody events checked")
            broken = result.first_break
            if broken is None:
                click.echo("every chain is intact")
                return
            click.echo(f"BROKEN: specimen {broken.barcode}, link {broken.seq or '-'}, event "
                       f"{broken.event_id}: {broken.problem}", err=True)
            sys.exit(1)
        total = custody_chain.count_specimens(connection)
        with click.progressbar(length=total, label="custody chains", file=sys.stderr) as bar:
            record = tamper_evidence.verify_record(connection, progress=bar.update)
    click.echo(f"{record.custody_specimens} specimens, {record.custody_events} custody events, "
               f"{record.specimens} registry rows, {record.audit_entries} audit entries, "
               f"{record.seals} seals, {record.flights_sealed} flights "
               f"({record.telemetry_rows_sealed} telemetry rows sealed, "
               f"{record.telemetry_rows_unsealed} received after their seal) checked")
    broken = record.first_break
    if broken is None:
        click.echo("the record is intact")
        return
    click.echo(f"BROKEN: {broken.record} {broken.subject}"
               f"{', ' + broken.position if broken.position else ''}: {broken.problem}",
               err=True)
    sys.exit(1)
