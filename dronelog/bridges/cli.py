"""`dronelog bridge mavlink|dji`: real aircraft into dronelog's contract (docs/bridges.md).

Registered in dronelog/cli.py as `main.add_command(bridge)`; also runs on its own as
`python -m dronelog.bridges`. dronelog's broker, topic prefix and log format come from the
usual settings (DRONELOG_MQTT_URL, DRONELOG_MQTT_PROTOCOL, DRONELOG_TOPIC_PREFIX, ...).
"""

import queue
import signal
import threading
from datetime import timedelta
from pathlib import Path

import click
import structlog
from pydantic import ValidationError

from dronelog.config import Settings, invalid_configuration
from dronelog.logs import configure_logging

log = structlog.get_logger("dronelog.bridges")

_MAPPING = click.option("--mapping", "mapping_file", type=click.Path(
    exists=True, dir_okay=False, path_type=Path), default=None,
    help="TOML file mapping aircraft to drone ids, and optional [[sites]]")
_SITES = click.option("--sites", "sites_files", multiple=True, type=click.Path(
    exists=True, dir_okay=False, path_type=Path),
    help="TOML file with [[sites]] (id, lat, lon, pad_radius_m), e.g. a scenario file; "
    "repeatable")
_SITE_RADIUS = click.option("--site-radius", type=click.FloatRange(1, 5000), default=100.0,
                            show_default=True,
                            help="metres from a site's point that count as at the site, when "
                            "the site gives no radius")
_MQTT = click.option("--mqtt-url", default=None,
                     help="dronelog's broker  [default: DRONELOG_MQTT_URL]")
_CLIENT = click.option("--client-id", "client_prefix", default=None,
                       help="prefix of this bridge's MQTT client ids; two bridges side by "
                       "side need two")
_OUTBOX = click.option("--outbox/--no-outbox", default=None,
                       help="keep each event on disk until its receipt comes, and send it "
                       "again when late or after a reconnect  [default: DRONELOG_RECEIPTS]")
_OUTBOX_FILE = click.option("--outbox-file", type=click.Path(dir_okay=False, path_type=Path),
                            default=None, help="the outbox's SQLite file  [default: "
                            "<DRONELOG_HOME>/outbox-<client id prefix>.sqlite]")
_PLAN_AGE = click.option("--plan-max-age", type=click.FloatRange(0.1, 24 * 30), default=12.0,
                         show_default=True,
                         help="hours: an unflown plan older than this names no take-off")


@click.group("bridge")
@click.pass_context
def bridge(ctx: click.Context) -> None:
    """Bridges from real aircraft: MAVLink autopilots and DJI Cloud API into the contract."""
    if not isinstance(ctx.obj, Settings):  # run on its own, not under `dronelog`
        try:
            ctx.obj = Settings()
        except ValidationError as error:
            raise click.ClickException(invalid_configuration(error)) from error
        configure_logging(ctx.obj.log_level, ctx.obj.log_format)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{text!r} is not HOST:PORT")
    return host or "0.0.0.0", int(port)


def _book(mapping_file, sites_files, site_radius, plan_max_age_h):
    from dronelog.bridges.flights import FlightBook, SiteBook
    from dronelog.bridges.mapping import load_sites

    files = ([mapping_file] if mapping_file else []) + list(sites_files)
    return FlightBook(SiteBook(load_sites(files, site_radius)),
                      plan_max_age=timedelta(hours=plan_max_age_h))


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def _outbox(settings: Settings, enabled: bool | None, path: Path | None, prefix: str):
    """The bridge's outbox on disk (docs/bridges.md), or None when receipts are off."""
    from dronelog.outbox import Outbox, SqliteStore

    if not (settings.receipts if enabled is None else enabled):
        return None
    path = path or settings.home / f"outbox-{prefix}.sqlite"
    outbox = Outbox(SqliteStore(path), max_events=200_000)
    log.info("outbox", file=str(path), **outbox.report().fields())
    return outbox


def _plan_listener(settings: Settings, url: str, client_prefix: str, deliver):
    from dronelog.bridges.mqtt import Subscriber, plan_from, plan_subscriptions
    from dronelog.contract.topics import TopicLayout

    def on_message(_topic: str, payload: bytes) -> None:
        event = plan_from(payload)
        if event is not None:
            deliver(event)

    return Subscriber(url, f"{client_prefix}-plans",
                      plan_subscriptions(TopicLayout(settings.topic_prefix)), on_message,
                      settings.mqtt_protocol, name="dronelog").start()


@bridge.command("mavlink")
@click.option("--listen", default="127.0.0.1:14550", show_default=True,
              help="UDP HOST:PORT to receive MAVLink on (a MAVLink router's or the "
              "autopilot's UDP output); 0.0.0.0:14550 for every interface")
@click.option("--map", "pairs", multiple=True, metavar="SYSID=DRONE",
              help="MAVLink system id to drone id; repeatable")
@_MAPPING
@_SITES
@_SITE_RADIUS
@_MQTT
@_CLIENT
@_OUTBOX
@_OUTBOX_FILE
@_PLAN_AGE
@click.option("--report-period", type=click.FloatRange(0.01, 60), default=1.0,
              show_default=True, help="seconds between telemetry reports of a drone")
@click.option("--link-timeout", type=click.FloatRange(1, 600), default=10.0,
              show_default=True, help="seconds without HEARTBEAT before a drone is offline")
@click.option("--box-temperature-name", default="BOX_T", show_default=True,
              help="NAMED_VALUE_FLOAT name carrying the payload box temperature (deg C)")
@click.pass_obj
def mavlink_command(settings: Settings, listen: str, pairs: tuple[str, ...],
                    mapping_file: Path | None, sites_files: tuple[Path, ...],
                    site_radius: float, mqtt_url: str | None, client_prefix: str | None,
                    outbox: bool | None, outbox_file: Path | None,
                    plan_max_age: float, report_period: float, link_timeout: float,
                    box_temperature_name: str) -> None:
    """Listen for MAVLink on UDP and publish each mapped vehicle's telemetry, take-offs,
    landings and link status to dronelog's broker (runs until SIGTERM or Ctrl-C)."""
    from dronelog.bridges.mapping import MappingError, load_drones
    from dronelog.bridges.mavlink import MavlinkBridge, MavlinkTranslator
    from dronelog.bridges.mqtt import ContractPublisher
    from dronelog.contract.topics import TopicLayout

    if len(box_temperature_name.encode()) > 10:
        raise click.BadParameter("NAMED_VALUE_FLOAT names have at most 10 characters",
                                 param_hint="--box-temperature-name")
    try:
        drones = load_drones("mavlink", mapping_file, pairs)
        flights = _book(mapping_file, sites_files, site_radius, plan_max_age)
    except MappingError as error:
        raise click.ClickException(str(error)) from error
    if not drones:
        raise click.ClickException("no vehicle mapped: give --map SYSID=DRONE or --mapping")
    url = mqtt_url or settings.mqtt_url
    prefix = client_prefix or "dronelog-bridge-mavlink"
    translator = MavlinkTranslator(drones, flights, report_period_s=report_period,
                                   link_timeout_s=link_timeout,
                                   box_temperature_name=box_temperature_name)
    publisher = ContractPublisher(url, TopicLayout(settings.topic_prefix),
                                  settings.mqtt_protocol, prefix,
                                  outbox=_outbox(settings, outbox, outbox_file, prefix))
    plans: queue.SimpleQueue = queue.SimpleQueue()
    try:
        mavlink_bridge = MavlinkBridge(_host_port(listen), translator, publisher, plans)
    except OSError as error:
        raise click.ClickException(f"cannot listen on UDP {listen}: {error}") from error
    listener = _plan_listener(settings, url, prefix, plans.put)
    stop = _stop_on_signals()
    log.info("MAVLink bridge starting", udp=listen, broker=f"{publisher.broker.host}:"
             f"{publisher.broker.port}", drones={str(k): v for k, v in drones.items()},
             sites=len(flights.sites.sites))
    try:
        mavlink_bridge.run(stop)
    finally:
        listener.stop()
        publisher.close()
        log.info("MAVLink bridge stopped", datagrams=mavlink_bridge.datagrams,
                 bad_datagrams=mavlink_bridge.bad_datagrams, published=publisher.published,
                 acknowledged=publisher.acked)


@bridge.command("dji")
@click.option("--dji-url", required=True,
              help="the DJI Cloud API platform's MQTT broker: mqtt[s]://[user:pass@]host:port")
@click.option("--dji-protocol", type=click.Choice(["5", "3.1.1"]), default="3.1.1",
              show_default=True, help="MQTT version toward DJI's broker")
@click.option("--map", "pairs", multiple=True, metavar="SN=DRONE",
              help="aircraft serial number to drone id; repeatable")
@_MAPPING
@_SITES
@_SITE_RADIUS
@_MQTT
@_CLIENT
@_OUTBOX
@_OUTBOX_FILE
@_PLAN_AGE
@click.option("--osd-period", type=click.FloatRange(0.1, 60), default=2.0, show_default=True,
              help="seconds between the aircraft's OSD messages (0.5 Hz per DJI)")
@click.option("--geoid-separation", type=click.FloatRange(-120, 120), default=0.0,
              show_default=True, help="metres of the geoid above the WGS 84 ellipsoid where "
              "the aircraft fly: DJI's `height` is ellipsoidal, dronelog's alt_m is above "
              "mean sea level")
@click.pass_obj
def dji_command(settings: Settings, dji_url: str, dji_protocol: str, pairs: tuple[str, ...],
                mapping_file: Path | None, sites_files: tuple[Path, ...], site_radius: float,
                mqtt_url: str | None, client_prefix: str | None, outbox: bool | None,
                outbox_file: Path | None, plan_max_age: float, osd_period: float,
                geoid_separation: float) -> None:
    """Subscribe to DJI Cloud API topics (thing/product/+/osd, thing/product/+/events,
    sys/product/+/status) and publish each mapped aircraft's telemetry, take-offs, landings
    and status to dronelog's broker (runs until SIGTERM or Ctrl-C)."""
    from dronelog.bridges.dji import SUBSCRIPTIONS, DjiBridge, DjiTranslator
    from dronelog.bridges.mapping import MappingError, load_drones
    from dronelog.bridges.mqtt import ContractPublisher, Subscriber
    from dronelog.contract.topics import TopicLayout

    try:
        aircraft = load_drones("dji", mapping_file, pairs)
        flights = _book(mapping_file, sites_files, site_radius, plan_max_age)
    except MappingError as error:
        raise click.ClickException(str(error)) from error
    if not aircraft:
        raise click.ClickException("no aircraft mapped: give --map SN=DRONE or --mapping")
    url = mqtt_url or settings.mqtt_url
    prefix = client_prefix or "dronelog-bridge-dji"
    translator = DjiTranslator(aircraft, flights, osd_period_s=osd_period,
                               geoid_separation_m=geoid_separation)
    publisher = ContractPublisher(url, TopicLayout(settings.topic_prefix),
                                  settings.mqtt_protocol, prefix,
                                  outbox=_outbox(settings, outbox, outbox_file, prefix))
    dji_bridge = DjiBridge(translator, publisher)
    try:
        dji = Subscriber(dji_url, f"{prefix}-in", SUBSCRIPTIONS, dji_bridge.dji_message,
                         dji_protocol, name="dji")
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--dji-url") from error
    dji.start()
    listener = _plan_listener(settings, url, prefix, dji_bridge.plan)
    stop = _stop_on_signals()
    log.info("DJI bridge starting", dji=f"{dji.broker.host}:{dji.broker.port}",
             broker=f"{publisher.broker.host}:{publisher.broker.port}", aircraft=aircraft,
             sites=len(flights.sites.sites))
    try:
        dji_bridge.run(stop)
    finally:
        dji.stop()
        listener.stop()
        publisher.close()
        log.info("DJI bridge stopped", skipped=dji_bridge.skipped,
                 published=publisher.published, acknowledged=publisher.acked)
