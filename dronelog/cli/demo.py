"""`dronelog demo`: the whole system on embedded defaults, on one machine, in one command."""

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from dronelog.cli.common import Duration, writable_engine
from dronelog.cli.services import run_ingester
from dronelog.cli.sites import import_network_file
from dronelog.config import Settings
from dronelog.logs import configure_logging

# Demo users: lab staff at the lead hospital and at each township site, a dispatcher and an
# administrator. The passwords are printed by `dronelog demo`: for a demonstration only.
DEMO_PASSWORD = "demo1234"
DEMO_USERS = (("dispatcher", "dispatcher", None, "调度员 Dispatcher"),
              ("admin", "admin", None, "管理员 Administrator"),
              ("lab-pdrmyy", "lab", "pdrmyy", "检验科 平度市人民医院"),
              ("lab-pddermyy", "lab", "pddermyy", "检验科 平度市第二人民医院"),
              ("lab-cjzxwsy", "lab", "cjzxwsy", "崔家中心卫生院"),
              ("lab-wjwsy", "lab", "wjwsy", "万家卫生院"))
DEMO_FAULTS = ("lost_link=0.05,temperature_excursion=0.05,delayed_receipt=0.05,"
               "seal_changed=0.03,tube_left_behind=0.03,duplicate=0.01,out_of_order=0.01,"
               "malformed=0.005")


# the services the demo is nothing without: when one of them stops by itself the demo says so
# and stops; the simulator and the dispatcher may end by themselves (told, unless they failed)
ESSENTIAL_SERVICES = ("scheduler", "api")


class PortsBusy(click.ClickException):
    exit_code = 2


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=18830, show_default=True,
              help="port of the local broker the demo starts on 127.0.0.1")
@click.option("--external-broker", is_flag=True,
              help="use the broker of DRONELOG_MQTT_URL instead of starting one")
@click.option("--scenario", "scenario_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="the network to simulate  [default: the shipped Pingdu network]")
@click.option("--history", type=Duration(), default="24h", show_default=True,
              help="simulated past, sent at once, before the simulation goes on live: a "
              "whole day, so that a start at night still shows a day of activity")
@click.option("--no-simulator", is_flag=True, help="start without the simulator")
@click.option("--api-port", type=click.IntRange(1, 65535), default=None,
              help="port of the API and dashboards on 127.0.0.1  [default: DRONELOG_API_PORT, "
              "8080]")
@click.option("--open-browser", is_flag=True, help="open the dashboards in the web browser")
@click.option("--verbose", is_flag=True, help="the ingester's log on the terminal too (by "
              "default every service logs to DRONELOG_HOME/logs/ only)")
@click.pass_obj
def demo(settings: Settings, port: int, external_broker: bool, scenario_file: Path | None,
         history: timedelta, no_simulator: bool, api_port: int | None,
         open_browser: bool, verbose: bool) -> None:
    """Run the system on embedded defaults: a local broker, the ingester, SQLite, the
    turnaround scheduler, the API and dashboards, and the simulator flying the Pingdu network
    (with faults): the last 24 hours at once, then live, in step with the wall clock the
    scheduler goes by. Everything is kept in DRONELOG_HOME (database, broker data, logs).

    The local broker is Mosquitto with dronelog's configuration (persistent sessions, no
    queue limit) when the mosquitto binary is installed, else the embedded amqtt broker.
    The services end with the demo, however it ends; the demo ends (exit 1) when its API or
    scheduler stops by itself, naming it and its log.
    """
    from dronelog import resources
    from dronelog.broker import start_local_broker
    from dronelog.child_processes import PARENT_ENV, die_with_parent

    if api_port is not None:
        settings = settings.model_copy(update={"api_port": api_port})
    wanted = {"API": (settings.api_host, settings.api_port)}
    if not external_broker:
        wanted["broker"] = ("127.0.0.1", port)
    busy = [f"{name} port {port_} on {host}" for name, (host, port_) in wanted.items()
            if port_busy(host, port_)]
    if busy:
        raise PortsBusy(f"in use: {', '.join(busy)}. Stop what holds it (an earlier demo?) "
                        "or choose others with --port / --api-port; nothing was started.")
    scenario_file = scenario_file or resources.scenario("pingdu")
    if not no_simulator:
        from dronelog_sim.scenario import ScenarioError, load_scenario

        try:
            load_scenario(scenario_file)
        except ScenarioError as error:
            raise click.ClickException(str(error)) from error
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    broker = None
    if not external_broker:
        broker = start_local_broker(settings.home / "broker", port, preexec_fn=die_with_parent)
        # receipts on a connection of their own, as in a deployment (this broker takes anyone)
        settings = settings.model_copy(update={"mqtt_url": broker.url,
                                               "mqtt_protocol": broker.protocol,
                                               "receipts_mqtt_url": broker.url})
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    lost: list[str] = []
    try:
        import_network_file(settings, scenario_file)
        environment = {**os.environ, "DRONELOG_MQTT_URL": settings.mqtt_url,
                       "DRONELOG_MQTT_PROTOCOL": settings.mqtt_protocol,
                       "DRONELOG_TOPIC_PREFIX": settings.topic_prefix,
                       "DRONELOG_DATABASE_URL": settings.database_url,
                       "DRONELOG_HOME": str(settings.home),
                       "DRONELOG_API_HOST": settings.api_host,
                       "DRONELOG_API_PORT": str(settings.api_port),
                       PARENT_ENV: str(os.getpid())}

        def start(name: str, *arguments: str, module: str = "dronelog") -> None:
            with open(logs / f"{name}.log", "ab") as log_file:
                children[name] = subprocess.Popen(
                    [sys.executable, "-m", module, *arguments], env=environment,
                    stdout=log_file, stderr=log_file, start_new_session=True,
                    preexec_fn=die_with_parent)

        start("scheduler", "scheduler")
        start("api", "api")
        zone = ZoneInfo(settings.network_timezone)
        now = datetime.now(UTC).replace(microsecond=0)
        click.echo(
            f"dronelog demo\n  home:     {settings.home}\n"
            f"  broker:   {settings.mqtt_url} (MQTT {settings.mqtt_protocol})\n"
            f"  database: {settings.database_url}\n  logs:     {logs}/ (ingester, scheduler, "
            "api, simulator, dispatcher)\n"
            f"  topics:   {settings.topic_prefix}/drones/<id>/telemetry|flight|custody|status, "
            f"{settings.topic_prefix}/sites/<id>/custody (docs/contract.md)\n"
            "  Ctrl-C stops everything; `dronelog dead-letters` shows refused input.", err=True)
        for line in _demo_logins(settings):
            click.echo(line, err=True)
        if not no_simulator:
            begin = now - history
            click.echo(f"  simulator: {scenario_file.name}, the history from "
                       f"{begin.astimezone(zone):%Y-%m-%d %H:%M} to now "
                       f"({settings.network_timezone}) sent at once, then live", err=True)
            start("simulator", "simulate", "run", str(scenario_file),
                  "--start", begin.isoformat(),
                  "--duration", str((history + timedelta(days=1)).total_seconds()),
                  "--speed", "1", "--faults", DEMO_FAULTS)
            # the clinics ask for flights and a dispatcher assigns those nobody took within
            # a minute, through the public API (docs/dispatch.md, "The demo's loop")
            click.echo("  dispatcher: the clinics' requests, assigned after 60 s unless a "
                       "person acts first", err=True)
            start("dispatcher", "--api", f"http://{settings.api_host}:{settings.api_port}",
                  "--scenario", str(scenario_file), "--password", DEMO_PASSWORD,
                  module="dronelog_sim.dispatcher")
        if open_browser:
            import webbrowser

            webbrowser.open(f"http://{settings.api_host}:{settings.api_port}/")
        if not verbose:  # the demo's faults make the ingester log every refused message
            configure_logging(settings.log_level, settings.log_format,
                              open(logs / "ingester.log", "a", encoding="utf-8", buffering=1))
        watch_services(children, logs, stopping, lost)
        run_ingester(settings, exit_when_done=False)
    finally:
        stopping.set()
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
        if broker:
            broker.stop()
    if lost:
        raise click.ClickException(f"the demo stopped because its {' and '.join(lost)} "
                                   f"stopped; see {logs}/")


def watch_services(children: dict[str, subprocess.Popen], logs: Path,
                   stopping: threading.Event, lost: list[str],
                   interval_s: float = 1.0) -> threading.Thread:
    """Say on the terminal when one of the demo's services stops by itself, and stop the demo
    (as Ctrl-C would: SIGTERM to itself) when the demo cannot go on without it: the scheduler,
    the API, or any that failed. Without this, a dead API left the demo ingesting behind
    dashboards that no longer answered, and nothing said why."""
    def watch() -> None:
        told: set[str] = set()
        while not stopping.wait(interval_s):
            for name, child in children.items():
                code = child.poll()
                if code is None or name in told or stopping.is_set():  # stopped by the demo
                    continue
                told.add(name)
                click.echo(f"dronelog demo: the {name} stopped (exit code {code}); its log: "
                           f"{logs / name}.log", err=True)
                if name in ESSENTIAL_SERVICES or code != 0:
                    lost.append(name)
                    os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="demo-services", daemon=True)
    thread.start()
    return thread


def port_busy(host: str, port: int) -> bool:
    """Something listens on (host, port) already: binding it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def _demo_logins(settings: Settings) -> list[str]:
    """Demo users with passwords (made on the first demo), and a bearer token each for the
    dispatcher and the lead hospital's lab, for curl and /docs."""
    from dronelog.api.accounts import AccountError, Role, add_user, issue_token

    base = f"http://{settings.api_host}:{settings.api_port}"
    lines = [f"  dashboards: {base}/   (API: {base}/docs)",
             f"  logins (password {DEMO_PASSWORD} for each):"]
    now = datetime.now(UTC)
    with writable_engine(settings).begin() as connection:
        for user_id, role, site, name in DEMO_USERS:
            try:
                add_user(connection, user_id, Role(role), now, password=DEMO_PASSWORD,
                         site_id=site, display_name=name)
            except AccountError:
                pass  # there from an earlier demo
            lines.append(f"    {user_id:<14} {role:<10} {site or '':<9} {name}")
        for user_id in ("dispatcher", "lab-pdrmyy"):
            token = issue_token(connection, user_id, now, timedelta(hours=12))
            lines.append(f"  token of {user_id}: {token}")
    return lines
