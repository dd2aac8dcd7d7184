"""The `dronelog` command. Every subcommand reads settings from DRONELOG_* and dronelog.toml."""

import gc
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import structlog
from pydantic import ValidationError
from sqlalchemy import select

from dronelog import __version__
from dronelog.bridges.cli import bridge
from dronelog.config import Settings
from dronelog.logs import configure_logging

log = structlog.get_logger("dronelog")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid configuration:\n{error}") from error


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dronelog")
@click.pass_context
def main(ctx: click.Context) -> None:
    """dronelog: track drone transport of lab specimens and blood between hospitals.

    Configuration comes from environment variables DRONELOG_* (for example
    DRONELOG_DATABASE_URL, DRONELOG_MQTT_URL) and from dronelog.toml or the file named by
    DRONELOG_CONFIG.
    """
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except (ValueError, IndexError) as error:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 2h or 1d") from error


class _Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        return value if isinstance(value, timedelta) else _duration(value)


@main.command()
@click.pass_obj
def ingest(settings: Settings) -> None:
    """Store every event from the broker exactly once (runs until SIGTERM or Ctrl-C)."""
    _run_ingester(settings)


@main.command()
@click.option("--port", type=int, default=18830, show_default=True,
              help="port of the local broker the demo starts on 127.0.0.1")
@click.option("--external-broker", is_flag=True,
              help="use the broker of DRONELOG_MQTT_URL instead of starting one")
@click.option("--scenario", "scenario_file", type=click.Path(exists=True, path_type=Path),
              default=Path("scenarios/pingdu.toml"), show_default=True)
@click.option("--history", type=_Duration(), default="6h", show_default=True,
              help="simulated past, sent at once, before the simulation goes on live")
@click.option("--no-simulator", is_flag=True, help="start without the simulator")
@click.option("--api-port", type=click.IntRange(1, 65535), default=None,
              help="port of the API and dashboards on 127.0.0.1  [default: DRONELOG_API_PORT, "
              "8080]")
@click.option("--open-browser", is_flag=True, help="open the dashboards in the web browser")
@click.pass_obj
def demo(settings: Settings, port: int, external_broker: bool, scenario_file: Path,
         history: timedelta, no_simulator: bool, api_port: int | None,
         open_browser: bool) -> None:
    """Run the system on embedded defaults: a local broker, the ingester, SQLite, the
    turnaround scheduler, the API and dashboards, and the simulator flying the Pingdu network
    (with faults): the last hours at once, then live, in step with the wall clock the
    scheduler goes by.

    The local broker is Mosquitto with dronelog's configuration (persistent sessions, no
    queue limit) when the mosquitto binary is installed, else the embedded amqtt broker.
    """
    import os
    import subprocess

    from dronelog.broker import start_local_broker

    if api_port is not None:
        settings = settings.model_copy(update={"api_port": api_port})
    broker = None
    if not external_broker:
        broker = start_local_broker(Path(".dronelog/broker"), port)
        settings = settings.model_copy(update={"mqtt_url": broker.url,
                                               "mqtt_protocol": broker.protocol})
    click.echo(
        f"dronelog demo\n  broker:   {settings.mqtt_url} (MQTT {settings.mqtt_protocol})\n"
        f"  database: {settings.database_url}\n"
        f"  topics:   {settings.topic_prefix}/drones/<id>/telemetry|flight|custody|status, "
        f"{settings.topic_prefix}/sites/<id>/custody (docs/contract.md)\n"
        "  Ctrl-C stops; `dronelog dead-letters` shows refused input.", err=True)
    from dronelog.storage.network import import_network
    from simulators.scenario import ScenarioError, load_scenario

    try:
        import_network(_engine(settings), load_scenario(scenario_file))
    except ScenarioError as error:
        raise click.ClickException(str(error)) from error
    environment = {**os.environ, "DRONELOG_MQTT_URL": settings.mqtt_url,
                   "DRONELOG_MQTT_PROTOCOL": settings.mqtt_protocol,
                   "DRONELOG_TOPIC_PREFIX": settings.topic_prefix,
                   "DRONELOG_DATABASE_URL": settings.database_url,
                   "DRONELOG_API_HOST": settings.api_host,
                   "DRONELOG_API_PORT": str(settings.api_port)}
    engine_room = subprocess.Popen([sys.executable, "-m", "dronelog", "scheduler"],
                                   env=environment, start_new_session=True)
    api_server = subprocess.Popen([sys.executable, "-m", "dronelog", "api"],
                                  env=environment, start_new_session=True)
    for line in _demo_logins(settings):
        click.echo(line, err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(f"http://{settings.api_host}:{settings.api_port}/")
    simulator = None
    if not no_simulator:
        start = datetime.now(UTC).replace(microsecond=0) - history
        simulator = subprocess.Popen(
            [sys.executable, "-m", "dronelog", "simulate", "run", str(scenario_file),
             "--start", start.isoformat(), "--duration", str((history + timedelta(days=1))
                                                             .total_seconds()),
             "--speed", "1", "--faults", DEMO_FAULTS], env=environment, start_new_session=True)
    try:
        _run_ingester(settings, exit_when_done=False)
    finally:
        for child in (simulator, engine_room, api_server):
            if child and child.poll() is None:
                child.terminate()
                child.wait(10)
        if broker:
            broker.stop()


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply the migrations up to REVISION."""
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    migrate(engine, revision)
    click.echo(f"database at revision {revision}: {engine.url.render_as_string()}")


@db.command("retention")
@click.option("--days", "max_days", type=int, default=7, show_default=True,
              help="thin at most this many days of telemetry in this run")
@click.pass_obj
def db_retention(settings: Settings, max_days: int) -> None:
    """Thin and expire old telemetry now (the scheduler does it every 30 minutes)."""
    from dronelog.storage import retention

    engine = _engine(settings)
    with engine.begin() as connection:
        result = retention.run(connection, datetime.now(UTC), settings.telemetry_full_days,
                               settings.telemetry_retention_days, max_days)
    click.echo(f"partitions created: {', '.join(result.partitions_created) or 'none'}; "
               f"dropped: {', '.join(result.partitions_dropped) or 'none'}")
    click.echo(f"telemetry rows deleted: {result.rows_deleted}, thinned: {result.rows_thinned}"
               f"; thinned up to {result.thinned_until or 'nothing yet'}")


@main.group()
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


@main.command("dead-letters")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_obj
def dead_letters(settings: Settings, limit: int) -> None:
    """Show the newest dead letters: input that could not be stored, with the reason."""
    from dronelog.storage.database import create_db_engine
    from dronelog.storage.tables import DeadLetter

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    table = DeadLetter.__table__
    with engine.connect() as connection:
        rows = connection.execute(
            select(table).order_by(table.c.received_at.desc()).limit(limit)).all()
    for row in rows:
        click.echo(f"{row.received_at:%Y-%m-%d %H:%M:%S}  {row.reason_code:<24} {row.topic}\n"
                   f"    {row.reason}")
    click.echo(f"{len(rows)} shown", err=True)


@main.group()
def simulate() -> None:
    """The drone network without hardware: scenarios, load, record and replay."""


@simulate.command("run")
@click.argument("scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=Path("scenarios/pingdu.toml"))
@click.option("--duration", type=_Duration(), default="2h", show_default=True,
              help="simulated time to cover (90s, 30m, 2h, 1d)")
@click.option("--speed", type=float, default=60.0, show_default=True,
              help="simulated seconds per wall second; 1 is real time, 0 as fast as possible")
@click.option("--start", default=None, help="simulated start (ISO 8601 with offset); default: "
              "the latest start that keeps every event in the past of the wall clock")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--faults", default="", help="e.g. all=0.05 or duplicate=0.02,malformed=0.01")
@click.option("--telemetry-hz", type=float, default=1.0, show_default=True)
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="ground truth JSONL [.dronelog/truth-<scenario>-<seed>.jsonl]")
@click.option("--record", "record_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also record what is published, for replay")
@click.pass_obj
def simulate_run(settings: Settings, scenario_file: Path, duration: timedelta, speed: float,
                 start: str | None, seed: int, faults: str, telemetry_hz: float,
                 truth_path: Path | None, record_path: Path | None) -> None:
    """Simulate SCENARIO_FILE and publish it to the broker, writing the ground truth."""
    from simulators.faults import FaultRates
    from simulators.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(scenario_file)
        rates = FaultRates.parse(faults)
    except (ScenarioError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    begin = datetime.fromisoformat(start) if start else default_start(duration, speed)
    if begin.tzinfo is None:
        raise click.BadParameter("needs a UTC offset", param_hint="--start")
    truth_path = truth_path or Path(f".dronelog/truth-{scenario.scenario.name}-{seed}.jsonl")
    _simulate(settings, scenario, begin, duration, speed, seed, rates, telemetry_hz,
              truth_path, record_path)


def default_start(duration: timedelta, speed: float) -> datetime:
    """The earliest start that keeps every simulated event at or before the wall clock (the
    ingester refuses events from the future): now in real time, now minus the duration at
    full speed, in between when accelerated."""
    now = datetime.now(UTC).replace(microsecond=0)
    if speed <= 0:
        return now - duration
    return now - duration * (1 - 1 / max(speed, 1.0))


def _simulate(settings, scenario, begin, duration, speed, seed, rates, telemetry_hz,
              truth_path, record_path) -> None:
    import json

    from dronelog.contract.topics import TopicLayout
    from dronelog.outbox import Outbox
    from simulators.network import NetworkSimulator
    from simulators.publisher import DevicePublisher
    from simulators.runner import play

    layout = TopicLayout(settings.topic_prefix)
    click.echo(f"simulating {scenario.scenario.name}: {duration} from {begin.isoformat()}, "
               f"seed {seed}", err=True)
    simulation = NetworkSimulator(scenario, begin, duration, seed, rates, telemetry_hz,
                                  layout).run()
    kinds = {o["type"] for o in simulation.outcomes}
    counts = {k: sum(1 for o in simulation.outcomes if o["type"] == k) for k in sorted(kinds)}
    click.echo(f"  {counts}, {len(simulation.emissions)} messages to send; publishing at "
               f"{'full speed' if speed <= 0 else f'x{speed:g}'} to {settings.mqtt_url}",
               err=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    # Devices keep each event until its receipt comes when the ingester sends receipts.
    publisher = DevicePublisher(settings.mqtt_url, layout, settings.mqtt_protocol,
                                outbox=Outbox() if settings.receipts else None)
    record = record_path.open("w", encoding="utf-8") if record_path else None
    try:
        with truth_path.open("w", encoding="utf-8") as truth:
            truth.write(json.dumps({"type": "run", "scenario": scenario.scenario.name,
                                    "seed": seed, "start": begin.isoformat(),
                                    "duration_s": duration.total_seconds(),
                                    "telemetry_hz": telemetry_hz,
                                    "faults": rates.model_dump()}) + "\n")
            for outcome in simulation.outcomes:
                truth.write(json.dumps(outcome, ensure_ascii=False) + "\n")
            summary = play(simulation.emissions, publisher, speed, truth, record,
                           total=len(simulation.emissions))
            truth.write(json.dumps({"type": "summary", "sent": summary.sent,
                                    "valid_events": summary.valid_events,
                                    "by_kind": dict(sorted(summary.by_kind.items())),
                                    "by_fault": dict(sorted(summary.by_fault.items()))}) + "\n")
    finally:
        publisher.close()
        if record:
            record.close()
    for line in summary.lines():
        click.echo(line, err=True)
    if publisher.outbox is not None:
        report = publisher.outbox.report()
        click.echo(f"receipts: {report.delivered} events delivered, {report.refused} refused, "
                   f"{report.resent} sent again, {report.held} without a receipt", err=True)
    click.echo(f"ground truth: {truth_path}", err=True)
    if not summary.acked:
        raise click.ClickException("the broker did not acknowledge every message, or a "
                                   "receipt is missing")


@simulate.command("load")
@click.option("--drones", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--hz", type=click.FloatRange(0.01, 100), default=1.0, show_default=True)
@click.option("--duration", type=_Duration(), default="60s", show_default=True)
@click.option("--clients", type=click.IntRange(1, 64), default=4, show_default=True,
              help="MQTT connections sharing the load")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def simulate_load(settings: Settings, drones: int, hz: float, duration: timedelta,
                  clients: int, seed: int) -> None:
    """N drones x F Hz of telemetry in real time, with an exact count of what was sent."""
    from dronelog.contract.topics import TopicLayout
    from simulators.load import load_stream
    from simulators.publisher import DevicePublisher
    from simulators.runner import play

    layout = TopicLayout(settings.topic_prefix)
    publisher = DevicePublisher(settings.mqtt_url, layout, settings.mqtt_protocol,
                                pool_size=clients, client_prefix="load")
    total = int(duration.total_seconds() * hz) * drones
    try:
        summary = play(load_stream(drones, hz, duration, datetime.now(UTC), seed, layout),
                       publisher, 1.0, total=total)
    finally:
        publisher.close()
    for line in summary.lines():
        click.echo(line, err=True)
    click.echo(f"sent exactly {summary.sent} telemetry messages "
               f"({summary.valid_events} distinct event ids)")


@simulate.command("replay")
@click.argument("recording", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="1 as recorded, 10 ten times faster, 0 as fast as possible")
@click.pass_obj
def simulate_replay(settings: Settings, recording: Path, speed: float) -> None:
    """Publish a recording (JSONL) again, at any speed."""
    from dronelog.contract.topics import TopicLayout
    from simulators.publisher import DevicePublisher
    from simulators.runner import play, read_recording

    try:
        emissions = read_recording(recording)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    publisher = DevicePublisher(settings.mqtt_url, TopicLayout(settings.topic_prefix),
                                settings.mqtt_protocol, client_prefix="replay")
    try:
        summary = play(emissions, publisher, speed, total=len(emissions))
    finally:
        publisher.close()
    for line in summary.lines():
        click.echo(line, err=True)


@simulate.command("record")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--duration", type=_Duration(), default=None,
              help="stop after this long (default: until Ctrl-C)")
@click.pass_obj
def simulate_record(settings: Settings, output: Path, duration: timedelta | None) -> None:
    """Record what devices publish (drones/#, sites/#) to OUTPUT (JSONL) for replay; not
    what dronelog publishes back (receipts, alerts): a replay plays devices."""
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from dronelog.ingest.mqtt_source import BrokerAddress
    from simulators.network import Emission
    from simulators.runner import recording_line

    broker = BrokerAddress.parse(settings.mqtt_url)
    stop_at = time.monotonic() + duration.total_seconds() if duration else None
    counted = 0
    with output.open("w", encoding="utf-8") as out:
        def on_message(_client, _userdata, message) -> None:
            nonlocal counted
            out.write(recording_line(Emission(datetime.now(UTC), message.topic,
                                              message.payload, "recorded", None,
                                              qos=message.qos, retain=message.retain)) + "\n")
            counted += 1

        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        broker.configure(client)  # login, and TLS for mqtts://
        client.on_message = on_message
        client.connect(broker.host, broker.port)
        topics = [f"{settings.topic_prefix}/drones/#", f"{settings.topic_prefix}/sites/#"]
        client.subscribe([(topic, 1) for topic in topics])
        client.loop_start()
        click.echo(f"recording {', '.join(topics)} to {output}; Ctrl-C stops", err=True)
        try:
            while stop_at is None or time.monotonic() < stop_at:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            client.disconnect()
            client.loop_stop()
    click.echo(f"recorded {counted} messages", err=True)


@main.command()
@click.pass_obj
def scheduler(settings: Settings) -> None:
    """Run the turnaround engine: projections, alerts, notifications, daily report."""
    from dronelog.domain.policies import PolicyError
    from dronelog.turnaround.service import run_scheduler

    try:
        run_scheduler(_engine(settings), settings)
    except (PolicyError, OSError) as error:
        raise click.ClickException(f"cannot start the scheduler: {error}") from error


@main.group()
def sites() -> None:
    """The network's sites and routes."""


@sites.command("import")
@click.argument("network_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def sites_import(settings: Settings, network_file: Path) -> None:
    """Import (or update) the sites and routes of a scenario file."""
    from dronelog.storage.network import import_network
    from simulators.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(network_file)
    except ScenarioError as error:
        raise click.ClickException(str(error)) from error
    site_count, route_count = import_network(_engine(settings), scenario)
    click.echo(f"imported {site_count} sites and {route_count} routes from {network_file}")


@main.group()
def alerts() -> None:
    """List, acknowledge and resolve alerts."""


@alerts.command("list")
@click.option("--all", "show_all", is_flag=True, help="include resolved alerts")
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_obj
def alerts_list(settings: Settings, show_all: bool, limit: int) -> None:
    """The newest alerts, open and acknowledged first."""
    from dronelog.storage.tables import Alert

    table = Alert.__table__
    query = select(table).order_by(table.c.opened_at.desc()).limit(limit)
    if not show_all:
        query = query.where(table.c.state != "resolved")
    with _engine(settings).connect() as connection:
        rows = connection.execute(query).all()
    for row in rows:
        click.echo(f"#{row.id:<6} {row.state:<12} {row.severity:<8} {row.kind:<22} "
                   f"{row.subject_kind} {row.subject_id}\n        {row.message}")
    click.echo(f"{len(rows)} shown", err=True)


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", required=True, help="who acknowledges (staff id)")
@click.pass_obj
def alerts_ack(settings: Settings, alert_id: int, by: str) -> None:
    """Acknowledge an open alert."""
    _change_alert(settings, lambda c, store, now: store.acknowledge(c, alert_id, by, now))
    click.echo(f"alert {alert_id} acknowledged by {by}")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--by", required=True, help="who resolves (staff id)")
@click.option("--note", required=True, help="what was done")
@click.pass_obj
def alerts_resolve(settings: Settings, alert_id: int, by: str, note: str) -> None:
    """Resolve an alert by hand, with a note."""
    from dronelog.api.schemas import FreeText

    _check_text("--note", note, FreeText)
    _change_alert(settings, lambda c, store, now: store.resolve(c, alert_id, by, note, now))
    click.echo(f"alert {alert_id} resolved by {by}")


def _check_text(option: str, value: str, rule) -> None:
    """The API's rule for free text (`FreeText`) or names (`Label`), for the same fields here."""
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(rule).validate_python(value)
    except ValidationError as error:
        raise click.BadParameter(error.errors()[0]["msg"], param_hint=option) from error


def _change_alert(settings: Settings, change) -> None:
    from dronelog.turnaround import alert_store

    try:
        with _engine(settings).begin() as connection:
            change(connection, alert_store, datetime.now(UTC))
    except alert_store.AlertError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="the day (network time zone); default today")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of a table")
@click.pass_obj
def report(settings: Settings, day: datetime | None, as_csv: bool) -> None:
    """The turnaround report of a day per route, priority and kind."""
    import csv
    from zoneinfo import ZoneInfo

    from dronelog.turnaround.report import compute

    the_day = (day.date() if day
               else datetime.now(ZoneInfo(settings.network_timezone)).date())
    with _engine(settings).connect() as connection:
        rows = compute(connection, the_day, settings.network_timezone, datetime.now(UTC))
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=[k for k in rows[0] if k != "computed_at"]
                                if rows else ["day"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    click.echo(f"turnaround report {the_day} ({settings.network_timezone})")
    for row in rows:
        click.echo(f"{row['origin_site_id']}→{row['destination_site_id']} {row['priority']:<8}"
                   f"{row['kind']:<14} n={row['specimens']:<4} received={row['received']:<4} "
                   f"on time={row['on_time_pct']}%  p50={row['p50_min']} "
                   f"p90={row['p90_min']} min  excursions={row['excursions']} "
                   f"rejections={row['rejections']} flights={row['flights']}")


def _engine(settings: Settings):
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    if settings.auto_migrate:
        migrate(engine)
    return engine


main.add_command(bridge)  # dronelog bridge mavlink|dji: real aircraft in (docs/bridges.md)


@main.group()
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

    with _engine(settings).connect() as connection:
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


@main.command()
@click.pass_obj
def api(settings: Settings) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) with uvicorn."""
    import uvicorn

    from dronelog.api.app import create_app
    from dronelog.api.server import server_config

    click.echo(f"dronelog API on http://{settings.api_host}:{settings.api_port} "
               "(OpenAPI: /docs)", err=True)
    app = create_app(settings, _engine(settings))
    # What is loaded by now lives as long as the process: leave it out of the collector's
    # full passes, whose ~100 ms pauses set the fleet view's p99 (docs/benchmarks.md).
    gc.freeze()
    uvicorn.Server(server_config(app, settings)).run()


@main.group()
def users() -> None:
    """API users, their roles and tokens."""


@users.command("add")
@click.argument("user_id")
@click.option("--role", type=click.Choice(["lab", "dispatcher", "admin", "device"]),
              required=True)
@click.option("--site", "site_id", default=None, help="the site of a lab or device user")
@click.option("--name", "display_name", default=None)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input "
              "(devices need none: give them a token)")
@click.pass_obj
def users_add(settings: Settings, user_id: str, role: str, site_id: str | None,
              display_name: str | None, password_stdin: bool) -> None:
    """Add a user."""
    from dronelog.api.accounts import AccountError, Role, add_user, check_password

    if display_name is not None:
        from dronelog.api.schemas import Label

        _check_text("--name", display_name, Label)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        if password is not None:
            check_password(user_id, password, settings.password_min_length)
        with _engine(settings).begin() as connection:
            add_user(connection, user_id, Role(role), datetime.now(UTC), password, site_id,
                     display_name)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"added {role} user {user_id}")


@users.command("token")
@click.argument("user_id")
@click.option("--hours", type=float, default=None, help="lifetime [DRONELOG_TOKEN_TTL_H]; "
              "a person's at most DRONELOG_PERSON_TOKEN_MAX_H")
@click.pass_obj
def users_token(settings: Settings, user_id: str, hours: float | None) -> None:
    """Issue a bearer token (printed once; only its hash is kept)."""
    from dronelog.api.accounts import AccountError, issue_token

    try:
        with _engine(settings).begin() as connection:
            token = issue_token(connection, user_id, datetime.now(UTC),
                                timedelta(hours=hours or settings.token_ttl_h),
                                timedelta(hours=settings.person_token_max_h))
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(token)


@users.command("revoke")
@click.argument("user_id")
@click.pass_obj
def users_revoke(settings: Settings, user_id: str) -> None:
    """Revoke every token of a user."""
    from dronelog.api.accounts import AccountError, revoke_tokens

    try:
        with _engine(settings).begin() as connection:
            count = revoke_tokens(connection, user_id, datetime.now(UTC))
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"revoked {count} token(s) of {user_id}")


# Demo users: lab staff at the lead hospital and at each township site, a dispatcher and an
# administrator. The passwords are printed by `dronelog demo`: for a demonstration only.
DEMO_PASSWORD = "demo1234"
DEMO_USERS = (("dispatcher", "dispatcher", None, "调度员 Dispatcher"),
              ("admin", "admin", None, "管理员 Administrator"),
              ("lab-pdrmyy", "lab", "pdrmyy", "检验科 平度市人民医院"),
              ("lab-pddermyy", "lab", "pddermyy", "检验科 平度市第二人民医院"),
              ("lab-cjzxwsy", "lab", "cjzxwsy", "崔家中心卫生院"),
              ("lab-wjwsy", "lab", "wjwsy", "万家卫生院"))


def _demo_logins(settings: Settings) -> list[str]:
    """Demo users with passwords (made on the first demo), and a bearer token each for the
    dispatcher and the lead hospital's lab, for curl and /docs."""
    from dronelog.api.accounts import AccountError, Role, add_user, issue_token

    base = f"http://{settings.api_host}:{settings.api_port}"
    lines = [f"  dashboards: {base}/   (API: {base}/docs)",
             f"  logins (password {DEMO_PASSWORD} for each):"]
    now = datetime.now(UTC)
    with _engine(settings).begin() as connection:
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


DEMO_FAULTS = ("lost_link=0.05,temperature_excursion=0.05,delayed_receipt=0.05,"
               "seal_changed=0.03,tube_left_behind=0.03,duplicate=0.01,out_of_order=0.01,"
               "malformed=0.005")


def _run_ingester(settings: Settings, exit_when_done: bool = True) -> None:
    from dronelog.ingest.service import Ingester
    from dronelog.storage.database import create_db_engine, migrate

    engine = create_db_engine(settings.database_url, settings.sqlite_synchronous)
    if settings.auto_migrate:
        migrate(engine)
    ingester = Ingester(settings, engine)

    def stop(signum: int, _frame) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        ingester.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ingester.run()
    if exit_when_done:
        sys.exit(0)
