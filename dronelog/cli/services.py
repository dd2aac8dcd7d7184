"""The long-running services: the ingester, the turnaround scheduler and the API."""

import gc
import signal
import sys

import click
import structlog

from dronelog.cli.common import writable_engine
from dronelog.config import Settings

log = structlog.get_logger("dronelog")


@click.command()
@click.pass_obj
def ingest(settings: Settings) -> None:
    """Store every event from the broker exactly once (runs until SIGTERM or Ctrl-C)."""
    run_ingester(settings)


@click.command()
@click.pass_obj
def scheduler(settings: Settings) -> None:
    """Run the turnaround engine: projections, alerts, notifications, daily report."""
    from dronelog.domain.policies import PolicyError
    from dronelog.turnaround.service import run_scheduler

    try:
        run_scheduler(writable_engine(settings), settings)
    except (PolicyError, OSError) as error:
        raise click.ClickException(f"cannot start the scheduler: {error}") from error


@click.command()
@click.pass_obj
def api(settings: Settings) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) with uvicorn."""
    import uvicorn

    from dronelog.api.app import create_app
    from dronelog.api.server import server_config

    click.echo(f"dronelog API on http://{settings.api_host}:{settings.api_port} "
               "(OpenAPI: /docs)", err=True)
    app = create_app(settings, writable_engine(settings))
    # What is loaded by now lives as long as the process: leave it out of the collector's
    # full passes, whose ~100 ms pauses set the fleet view's p99 (docs/benchmarks.md).
    gc.freeze()
    uvicorn.Server(server_config(app, settings)).run()


def run_ingester(settings: Settings, exit_when_done: bool = True) -> None:
    from dronelog.ingest.service import Ingester

    ingester = Ingester(settings, writable_engine(settings))

    def stop(signum: int, _frame) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        ingester.request_stop()

    for name in ("SIGTERM", "SIGINT", "SIGHUP"):  # SIGHUP: the terminal was closed
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)
    ingester.run()
    if exit_when_done:
        sys.exit(0)
