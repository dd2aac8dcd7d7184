"""The `dronelog` command. Every subcommand reads settings from DRONELOG_* and dronelog.toml.

One small module per command group: `services` (ingest, scheduler, api), `demo`, `simulate`,
`sites`, `alerts`, `users`, `records` (report, dead-letters), `audit`, `db`, `contract`;
`common` holds what they share. Commands that only read open an existing, migrated database
and never create one (`common.existing_engine`).
"""

import click

from dronelog import __version__
from dronelog.bridges.cli import bridge
from dronelog.child_processes import watch_parent
from dronelog.cli.alerts import alerts
from dronelog.cli.audit import audit
from dronelog.cli.common import load_settings
from dronelog.cli.contract import contract
from dronelog.cli.db import db
from dronelog.cli.demo import demo
from dronelog.cli.records import dead_letters, report
from dronelog.cli.services import api, ingest, scheduler
from dronelog.cli.simulate import simulate
from dronelog.cli.sites import sites
from dronelog.cli.users import users
from dronelog.logs import configure_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dronelog")
@click.pass_context
def main(ctx: click.Context) -> None:
    """dronelog: track drone transport of lab specimens and blood between hospitals.

    Configuration comes from environment variables DRONELOG_* (for example
    DRONELOG_DATABASE_URL, DRONELOG_MQTT_URL) and from dronelog.toml or the file named by
    DRONELOG_CONFIG. Data lives in DRONELOG_HOME (default: the user data folder).
    """
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    watch_parent()  # a demo's child stops when the demo is gone (child_processes.py)
    ctx.obj = settings


for command in (ingest, scheduler, api, demo, simulate, sites, alerts, users, report,
                dead_letters, audit, db, contract, bridge):
    main.add_command(command)

__all__ = ["main"]
