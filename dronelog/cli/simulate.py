"""`dronelog simulate`: the drone network without hardware (the `dronelog_sim` package,
imported only here and in the demo, lazily: the product never depends on its simulator)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from dronelog.cli.common import Duration
from dronelog.config import Settings


@click.group()
def simulate() -> None:
    """The drone network without hardware: scenarios, load, record and replay."""


@simulate.command("run")
@click.argument("scenario_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None)
@click.option("--duration", type=Duration(), default="2h", show_default=True,
              help="simulated time to cover (90s, 30m, 2h, 1d)")
@click.option("--speed", type=float, default=60.0, show_default=True,
              help="simulated seconds per wall second; 1 is real time, 0 as fast as possible")
@click.option("--start", default=None, help="simulated start (ISO 8601 with offset); default: "
              "the latest start that keeps every event in the past of the wall clock")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--faults", default="", help="e.g. all=0.05 or duplicate=0.02,malformed=0.01")
@click.option("--telemetry-hz", type=float, default=1.0, show_default=True)
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="ground truth JSONL [<home>/truth-<scenario>-<seed>.jsonl]")
@click.option("--record", "record_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="also record what is published, for replay")
@click.pass_obj
def simulate_run(settings: Settings, scenario_file: Path | None, duration: timedelta, speed: float,
                 start: str | None, seed: int, faults: str, telemetry_hz: float,
                 truth_path: Path | None, record_path: Path | None) -> None:
    """Simulate SCENARIO_FILE (default: the shipped Pingdu network) and publish it to the
    broker, writing the ground truth."""
    from dronelog import resources
    from dronelog_sim.faults import FaultRates
    from dronelog_sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(scenario_file or resources.scenario("pingdu"))
        rates = FaultRates.parse(faults)
    except (ScenarioError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    begin = datetime.fromisoformat(start) if start else default_start(duration, speed)
    if begin.tzinfo is None:
        raise click.BadParameter("needs a UTC offset", param_hint="--start")
    truth_path = truth_path or settings.home / f"truth-{scenario.scenario.name}-{seed}.jsonl"
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
    from dronelog_sim.network import NetworkSimulator
    from dronelog_sim.publisher import DevicePublisher
    from dronelog_sim.runner import play

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
@click.option("--duration", type=Duration(), default="60s", show_default=True)
@click.option("--clients", type=click.IntRange(1, 64), default=4, show_default=True,
              help="MQTT connections sharing the load")
@click.option("--seed", type=int, default=1, show_default=True)
@click.pass_obj
def simulate_load(settings: Settings, drones: int, hz: float, duration: timedelta,
                  clients: int, seed: int) -> None:
    """N drones x F Hz of telemetry in real time, with an exact count of what was sent."""
    from dronelog.contract.topics import TopicLayout
    from dronelog_sim.load import load_stream
    from dronelog_sim.publisher import DevicePublisher
    from dronelog_sim.runner import play

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
    from dronelog_sim.publisher import DevicePublisher
    from dronelog_sim.runner import play, read_recording

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
@click.option("--duration", type=Duration(), default=None,
              help="stop after this long (default: until Ctrl-C)")
@click.pass_obj
def simulate_record(settings: Settings, output: Path, duration: timedelta | None) -> None:
    """Record what devices publish (drones/#, sites/#) to OUTPUT (JSONL) for replay; not
    what dronelog publishes back (receipts, alerts): a replay plays devices."""
    import time

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from dronelog.ingest.mqtt_source import BrokerAddress
    from dronelog_sim.network import Emission
    from dronelog_sim.runner import recording_line

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
