"""The fault suite (issue 7): a simulated Pingdu run, published by the simulator's own device
clients (one MQTT client per drone and per site scanner, QoS 1, as in the field) through a
private Mosquitto to the real `dronelog ingest` process, with the real `dronelog scheduler`
sweeping beside it, and one fault injected while the run is being published. One test per
fault, so a failure names the fault:

- the ingester SIGKILLed 10 times at random (seeded) moments and restarted each time;
- Mosquitto restarted mid-run (the device clients keep what the broker has not acknowledged
  and send it again, as a drone does);
- PostgreSQL stopped for 30 s: the ingester stops acknowledging (the broker holds what comes
  in), stays up and resumes by itself;
- a burst of about 300 poison messages interleaved with the run;
- the scheduler SIGKILLed and restarted, then restarted cleanly, and the API process
  SIGKILLed and restarted, checked over HTTP before and after.

Every test checks, against the simulator's ground truth:

- the stored event ids are exactly the run's valid event ids, as a set and as a count (zero
  lost, zero doubled), and nothing else is stored;
- every malformed or poison message is exactly one dead letter, with the reason the truth
  expects (a message sent twice is still one letter);
- the ingester's lag recovers: what was published by the end of the fault is stored within
  `RECOVERY_S`, and the stored count reaches the truth's after the last message;
- the alerts are the ones the truth implies, each opened once, none stuck, none twice.

Why the alerts can be compared exactly: the run lies in the past and is published faster
than real time, while the scheduler judges by the wall clock. A breach, a turnaround warning
or a predicted breach would then depend on the moment a sweep happens to look, so the
scheduler gets turnaround targets of three days and no stability limits (nothing is ever
late; `POLICY`, `STABILITY`). What is
left does not depend on timing: a custody gap for the cargo of every flight whose seal was
changed, and a temperature excursion for every specimen the truth says had one. Lost-link
alerts are raised for flights in the air whenever a sweep sees their telemetry older than
30 s by the wall clock (always, for a run in the past); every one of them must be resolved
once the landing is stored: no stuck alert. No other kind may be opened.
"""

import bisect
import functools
import io
import json
import random
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import text

from dronelog.api.accounts import Role, add_user, issue_token
from dronelog.broker import free_port
from dronelog.contract.topics import TopicLayout
from dronelog.storage.database import create_db_engine, migrate
from dronelog.storage.network import import_network
from dronelog_sim.faults import EXPECTED_REASON, FaultRates, malform
from dronelog_sim.network import Emission, NetworkSimulator, Simulation
from dronelog_sim.publisher import DevicePublisher
from dronelog_sim.runner import play
from dronelog_sim.scenario import load_scenario
from tests.support import DronelogProcess, count, log_count, wait_for_log, wait_until

SCENARIO = Path(__file__).parent.parent / "scenarios" / "pingdu.toml"
SEED = 5
HOURS = 2  # simulated; about 9,700 messages, 8 flights
RUN_FAULTS = ("seal_changed=0.5,temperature_excursion=0.6,duplicate=0.02,out_of_order=0.02,"
              "malformed=0.01")  # with SEED: 12 alerts, 107 malformed messages
EVENT_TABLES = ("telemetry", "flight_event", "custody_event", "drone_status_event")
STORED = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in EVENT_TABLES)
CONNECTED = '"event": "connected to broker"'
RECOVERY_S = 30.0  # bound on catching up with what was published when a fault ended
BY_HAND = {"breach", "temperature_excursion", "custody_gap", "rejected_specimen"}
POLICY = "".join(f"[defaults.{p}]\ntarget_min = 4320\nwarning_fraction = 0.75\n\n"
                 for p in ("stat", "urgent", "routine"))
STABILITY = "specimen_type = []\n"
LAYOUT = TopicLayout()


def run_start(now: datetime, hours: float) -> datetime:
    """01:00 UTC (09:00 in Pingdu: both township shifts on duty) of the latest day on which
    the whole run, landings after its end included, lies in the past. A fixed time of day
    makes the run the same every day but for the dates."""
    latest = now - timedelta(hours=hours + 1)
    start = latest.replace(hour=1, minute=0, second=0, microsecond=0)
    return start if start <= latest else start - timedelta(days=1)


@functools.cache
def pingdu_run(hours: float = HOURS, seed: int = SEED, faults: str = RUN_FAULTS) -> Simulation:
    """The run every test publishes (made once per session; emissions are immutable)."""
    start = run_start(datetime.now(UTC), hours)
    return NetworkSimulator(load_scenario(SCENARIO), start, timedelta(hours=hours), seed,
                            FaultRates.parse(faults)).run()


def expected_alerts(outcomes: list[dict]) -> set[tuple[str, str]]:
    """What the ground truth says must be alerted, whatever the timing (see the module)."""
    flights = {o["flight_id"]: o for o in outcomes if o["type"] == "flight"}
    expected = {("temperature_excursion", o["barcode"]) for o in outcomes
                if o["type"] == "specimen" and o["excursion"]}
    expected |= {("custody_gap", barcode) for o in outcomes
                 if o["type"] == "fault" and o["fault"] == "seal_changed"
                 for barcode in flights[o["subject"]]["cargo"]}
    return expected


class Feeder(threading.Thread):
    """Plays the emissions with the simulator's own runner (`play`) and device clients
    (`DevicePublisher`) at `speed`, noting when each one went out."""

    def __init__(self, url: str, emissions: list[Emission], speed: float) -> None:
        super().__init__(name="feeder", daemon=True)
        self.emissions, self.speed = emissions, speed
        self.publisher = DevicePublisher(url, LAYOUT)
        # Every device connects before the run, as devices in the field are connected: a
        # broker restart must meet reconnecting clients, not a first connection refused.
        for topic in sorted({e.topic for e in emissions}):
            self.publisher._client_for(topic)
        self.sent_at: list[float] = []
        self._valid_upto: list[int] = []
        seen: set[str] = set()
        for emission in emissions:
            if emission.valid and emission.event_id:
                seen.add(emission.event_id)
            self._valid_upto.append(len(seen))
        self.summary = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def write(self, _line: str) -> None:
        """`play` writes one ground-truth line per message it has published."""
        self.sent_at.append(time.monotonic())

    def run(self) -> None:
        """Until the first flight takes off the network is quiet (specimens collected, drones
        online): that part goes at full speed, the rest at `speed`."""
        first = next(i for i, e in enumerate(self.emissions) if e.kind == "telemetry")
        try:
            quiet = play(self.emissions[:first], self.publisher, 0, truth=self,
                         stream=io.StringIO())
            self.summary = play(self.emissions[first:], self.publisher, self.speed,
                                truth=self, stream=io.StringIO())
            self.summary.sent += quiet.sent
            self.summary.acked &= quiet.acked
        except BaseException as error:  # reported by finish()
            self.error = error
        self.finished_at = time.monotonic()

    def sent(self) -> int:
        return len(self.sent_at)

    def valid_sent(self, by: float | None = None) -> int:
        """Distinct valid events published (by monotonic time `by`)."""
        sent = len(self.sent_at) if by is None else bisect.bisect_right(self.sent_at, by)
        return self._valid_upto[sent - 1] if sent else 0

    def wait_sent(self, fraction: float, timeout: float = 120) -> None:
        """Wait until `fraction` of the messages were sent, counting from the first
        telemetry report (before it, the network is on the ground and quiet)."""
        first = next(i for i, e in enumerate(self.emissions) if e.kind == "telemetry")
        target = first + int((len(self.emissions) - first) * fraction)
        if not wait_until(lambda: self.sent() >= target or not self.is_alive(), timeout, 0.02):
            raise TimeoutError(f"the feeder sent {self.sent()} of {target} in {timeout} s")

    def wait_past(self, moment: datetime, timeout: float = 120) -> None:
        """Wait until every message of simulated time before `moment` was sent."""
        target = bisect.bisect_left([e.at for e in self.emissions], moment)
        if not wait_until(lambda: self.sent() >= target or not self.is_alive(), timeout, 0.02):
            raise TimeoutError(f"the feeder sent {self.sent()} of {target} in {timeout} s")

    def unacked(self) -> int:
        return self.publisher.published - self.publisher.acked

    def finish(self, timeout: float = 180) -> None:
        self.join(timeout)
        assert not self.is_alive(), "the feeder did not finish"
        if self.error:
            raise self.error
        assert self.summary.acked, "the broker did not acknowledge every message"
        assert self.summary.sent == len(self.emissions)

    def close(self) -> None:
        self.publisher.close()


class LagMonitor(threading.Thread):
    """Samples (time, valid events published, events stored) every `every` seconds."""

    def __init__(self, database_url: str, feeder: Feeder, every: float = 0.25) -> None:
        super().__init__(name="lag", daemon=True)
        self.db = create_db_engine(database_url)
        self.feeder, self.every = feeder, every
        self.samples: list[tuple[float, int, int | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            moment, sent = time.monotonic(), self.feeder.valid_sent()
            try:
                stored = count(self.db, STORED)
            except Exception:  # the database may be down: that is one of the faults
                stored = None
            self.samples.append((moment, sent, stored))
            self.stop.wait(self.every)

    def recovery_s(self, fault_ended: float) -> float | None:
        """Seconds from `fault_ended` until everything published by then was stored."""
        target = self.feeder.valid_sent(by=fault_ended)
        for moment, _, stored in self.samples:
            if moment >= fault_ended and stored is not None and stored >= target:
                return moment - fault_ended
        return None

    def max_backlog(self) -> int:
        return max((sent - stored for _, sent, stored in self.samples if stored is not None),
                   default=0)

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.db.dispose()


class BrokerStore:
    """Mosquitto's count of the messages it holds (`$SYS/broker/store/messages/count`):
    messages queued or in flight to a session that has not acknowledged them, plus retained
    ones. Mosquitto looks at it every `sys_interval` (10 s) but publishes it only when it
    changed since its last look (measured with 2.0.11: an idle broker publishes it once)."""

    INTERVAL_S = 10

    def __init__(self, port: int) -> None:
        self.samples: list[tuple[float, int]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.samples.append(
            (time.monotonic(), int(message.payload)))
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("$SYS/broker/store/messages/count")
        self.client.loop_start()

    def between(self, begin: float, end: float) -> list[tuple[float, int]]:
        return [(t, n) for t, n in self.samples if begin <= t <= end]

    def count_after(self, moment: float) -> int:
        """The count as of a look Mosquitto took after `moment`: the first one published
        after it, or, if none came within an interval, the last one published (it has not
        changed since)."""
        wait_until(lambda: self.between(moment, float("inf")), self.INTERVAL_S + 1.5)
        later = self.between(moment, float("inf"))
        self.unchanged_at_end = not later
        return later[0][1] if later else self.samples[-1][1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Report:
    """Figures of one test, printed (pytest -s) for docs/reliability.md."""

    fault: str
    figures: dict = field(default_factory=dict)

    def show(self) -> None:
        print(f"\nFAULT-SUITE {self.fault}: {json.dumps(self.figures, default=str)}")


class FaultRun:
    """One simulated run through the real broker, ingester and scheduler (and API)."""

    def __init__(self, tmp_path: Path, broker, database_url: str, speed: float,
                 simulation: Simulation | None = None, extra: list[Emission] = (),
                 api: bool = False, **ingester_settings) -> None:
        self.started = time.monotonic()
        self.simulation = simulation or pingdu_run()
        self.emissions = sorted([*self.simulation.emissions, *extra], key=lambda e: e.at)
        self.valid = {uuid.UUID(e.event_id) for e in self.emissions if e.valid}
        self.bad = [e for e in self.emissions if not e.valid]
        self.broker, self.database_url, self.tmp_path = broker, database_url, tmp_path
        self.db = create_db_engine(database_url)
        migrate(self.db)
        import_network(self.db, load_scenario(SCENARIO))
        policy, stability = tmp_path / "policy.toml", tmp_path / "stability.toml"
        policy.write_text(POLICY)
        stability.write_text(STABILITY)
        common = dict(database_url=database_url, mqtt_url=broker.url, workdir=tmp_path,
                      protocol=broker.protocol)
        self.ingester = DronelogProcess(["ingest"], name="ingester", **common,
                                        **ingester_settings)
        self.scheduler = DronelogProcess(["scheduler"], name="scheduler", **common,
                                         sweep_interval_s=1, scheduler_lease_s=3,
                                         policy_file=policy, stability_file=stability)
        self.api = None
        if api:
            self.api_port = free_port()
            self.api = DronelogProcess(["api"], name="api", **common, api_port=self.api_port,
                                       policy_file=policy, stability_file=stability)
        self.feeder = Feeder(broker.url, self.emissions, speed)
        self.lag = LagMonitor(database_url, self.feeder)

    def start(self) -> "FaultRun":
        self.ingester.start()
        self.scheduler.start()
        if self.api:
            self.api.start()
        wait_for_log(self.ingester.log_path, CONNECTED, process=self.ingester.process)
        wait_for_log(self.scheduler.log_path, "scheduler started",
                     process=self.scheduler.process)
        self.lag.start()
        self.feeder.start()
        return self

    def restart_ingester(self) -> None:
        """Start it again and wait until it is connected (as a supervisor restarts it)."""
        self.ingester.start()
        wait_for_log(self.ingester.log_path, CONNECTED, times=self.ingester.starts,
                     process=self.ingester.process)

    def check_stored_exactly(self, timeout: float = 120, wills: bool = False) -> dict:
        """Zero lost, zero doubled, nothing foreign; the lag's end. With `wills`, the last
        wills of device clients whose link the fault cut (each drone client registers one)
        are the only events allowed beyond the truth, at most one per drone client."""
        self.feeder.finish()
        published = self.feeder.finished_at
        stored = wait_until(lambda: count(self.db, STORED) >= len(self.valid), timeout, 0.1)
        caught_up = time.monotonic()
        time.sleep(1.0)  # anything doubled or foreign would show up now
        with self.db.connect() as connection:
            ids = [uuid.UUID(str(row[0])) for table in EVENT_TABLES for row in
                   connection.execute(text(f"SELECT event_id FROM {table}"))]
        doubled = [i for i, n in Counter(ids).items() if n > 1]
        lost, foreign = self.valid - set(ids), set(ids) - self.valid
        will_count = 0
        if wills:
            with self.db.connect() as connection:
                will_rows = connection.execute(text(
                    "SELECT event_id, drone_id FROM drone_status_event "
                    "WHERE reason = 'will'")).all()
            clients = {e.topic.split("/")[3] for e in self.emissions if "/drones/" in e.topic}
            assert {row.drone_id for row in will_rows} <= clients
            assert len({row.drone_id for row in will_rows}) == len(will_rows)
            will_count = len(will_rows)
            foreign -= {uuid.UUID(str(row.event_id)) for row in will_rows}
        assert not doubled, f"{len(doubled)} events stored twice"
        assert not lost, f"{len(lost)} of {len(self.valid)} events lost"
        assert not foreign, f"{len(foreign)} events stored that the run never sent as valid"
        assert stored and len(ids) == len(self.valid) + will_count
        return {"messages": len(self.emissions), "valid_events": len(self.valid),
                "stored": len(ids), "last_wills": will_count, "catch_up_after_last_publish_s":
                round(max(0.0, caught_up - published), 1),
                "max_backlog_events": self.lag.max_backlog()}

    def check_dead_letters(self) -> dict:
        """Each bad message one letter, with the reason the truth expects."""
        expected = {(e.topic, e.payload): e.expected_reason for e in self.bad}
        wait_until(lambda: count(self.db, "SELECT count(*) FROM dead_letter") >= len(expected),
                   30)
        with self.db.connect() as connection:
            rows = connection.execute(text(
                "SELECT topic, payload, reason_code, reason FROM dead_letter")).all()
        letters = Counter((row.topic, bytes(row.payload)) for row in rows)
        assert max(letters.values(), default=1) == 1, "a message dead-lettered twice"
        assert set(letters) == set(expected), (
            f"{len(set(expected) - set(letters))} bad messages without a letter, "
            f"{len(set(letters) - set(expected))} letters for messages never sent as bad")
        wrong = [(row.topic, row.reason_code, expected[(row.topic, bytes(row.payload))])
                 for row in rows if row.reason_code != expected[(row.topic, bytes(row.payload))]
                 or not row.reason]
        assert not wrong, f"wrong reasons (topic, got, expected): {wrong[:5]}"
        return {"dead_letters": len(rows), "bad_messages_sent": len(self.bad),
                "by_reason": dict(Counter(row.reason_code for row in rows))}

    def check_alerts(self, timeout: float = 60) -> dict:
        """The truth's alerts, each opened once; no stuck lost link; no other kind; every
        change published to MQTT (the outbox drained)."""
        expected = expected_alerts(self.simulation.outcomes)
        flights = {o["flight_id"] for o in self.simulation.outcomes if o["type"] == "flight"}

        def active() -> list[tuple[str, str]]:
            with self.db.connect() as connection:
                return [tuple(row) for row in connection.execute(text(
                    "SELECT kind, subject_id FROM alert WHERE state != 'resolved'"))]

        wait_until(lambda: set(active()) == expected, timeout, 0.5)
        now_active = active()
        with self.db.connect() as connection:
            opened = [tuple(row) for row in connection.execute(text(
                "SELECT a.kind, a.subject_id FROM alert_change c JOIN alert a "
                "ON a.id = c.alert_id WHERE c.change = 'opened'"))]
        assert len(now_active) == len(set(now_active)), "an alert active twice"
        assert set(now_active) == expected, (
            f"missing {expected - set(now_active)}, extra or stuck {set(now_active) - expected}")
        by_hand = Counter(alert for alert in opened if alert[0] in BY_HAND)
        assert set(by_hand) == expected, f"by-hand alerts opened: {sorted(by_hand)}"
        assert max(by_hand.values(), default=1) == 1, "an alert raised twice"
        kinds = {kind for kind, _ in opened}
        assert kinds <= BY_HAND | {"lost_link"}, f"unexpected kinds {kinds}"
        assert {s for k, s in opened if k == "lost_link"} <= flights
        assert expected, "the run should raise some alerts"
        unpublished = "SELECT count(*) FROM alert_change WHERE NOT published"
        assert wait_until(lambda: count(self.db, unpublished) == 0, 30), (
            "alert changes left in the outbox (not published to MQTT)")
        return {"alerts_expected": len(expected), "alerts_opened": len(opened),
                "lost_link_opened_and_resolved": sum(k == "lost_link" for k, _ in opened)}

    def stop(self) -> None:
        """SIGTERM every process: each must exit cleanly."""
        codes = {"ingester": self.ingester.terminate(), "scheduler": self.scheduler.terminate()}
        if self.api:
            # uvicorn shuts down, then raises the SIGTERM again so the exit says why
            code = self.api.terminate()
            finished = log_count(self.api.log_path, "Finished server process")
            codes["api"] = 0 if code == -signal.SIGTERM and finished else code
        assert codes == dict.fromkeys(codes, 0), codes

    def close(self) -> None:
        for process in (self.ingester, self.scheduler, self.api):
            if process is not None and process.alive():
                process.kill()
        self.lag.close()
        self.feeder.close()
        self.db.dispose()

    def runtime_s(self) -> float:
        return round(time.monotonic() - self.started, 1)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dronelog.db'}"


# --- the faults -------------------------------------------------------------------------------


@pytest.mark.mosquitto
@pytest.mark.timeout(300)
def test_ingester_sigkilled_ten_times_at_random_moments(mosquitto, sqlite_url, tmp_path):
    run = FaultRun(tmp_path, mosquitto, sqlite_url, speed=120).start()
    report = Report("ingester SIGKILL x10")
    try:
        chance = random.Random(SEED)
        kills = []
        # Ten seeded moments of the stream. A restart takes seconds; when the next moment
        # has passed by then, the kill comes as soon as the new ingester is connected, in
        # the middle of catching up with what its predecessor left.
        for moment in sorted(chance.uniform(0.02, 0.9) for _ in range(10)):
            run.feeder.wait_sent(moment)
            time.sleep(chance.uniform(0.0, 0.4))
            killed_at = time.monotonic()
            kills.append({"at": killed_at, "published": run.feeder.valid_sent(),
                          "stored": count(run.db, STORED), "feeding": run.feeder.is_alive()})
            run.ingester.kill()
            time.sleep(chance.uniform(0.0, 0.3))
            run.restart_ingester()
        last_restart = time.monotonic()
        report.figures.update(run.check_stored_exactly())
        report.figures.update(run.check_dead_letters())
        report.figures.update(run.check_alerts())
        recovery = run.lag.recovery_s(last_restart)
        assert recovery is not None and recovery <= RECOVERY_S, recovery
        assert sum(kill["feeding"] for kill in kills) >= 7, ("kills under load", kills)
        assert sum(kill["stored"] < kill["published"] for kill in kills) >= 5, (
            "most kills should find work in progress", kills)
        run.stop()
        report.figures.update(kills=len(kills),
                              kills_while_publishing=sum(k["feeding"] for k in kills),
                              backlog_at_kills=[k["published"] - k["stored"] for k in kills],
                              recovery_after_each_kill_s=[
                                  round(run.lag.recovery_s(k["at"]), 1) for k in kills],
                              recovery_after_last_restart_s=round(recovery, 2),
                              runtime_s=run.runtime_s())
        report.show()
    finally:
        run.close()


@pytest.mark.mosquitto
@pytest.mark.timeout(300)
def test_mosquitto_restarted_mid_run(mosquitto, sqlite_url, tmp_path):
    run = FaultRun(tmp_path, mosquitto, sqlite_url, speed=400).start()
    report = Report("Mosquitto restart")
    try:
        run.feeder.wait_sent(0.4)
        down, sent_before = time.monotonic(), run.feeder.sent()
        mosquitto.stop()  # SIGTERM: it saves its state (sessions, queues) and exits
        time.sleep(3)  # the devices keep publishing into their own queues meanwhile
        unacked = run.feeder.unacked()
        sent_while_down = run.feeder.sent() - sent_before
        mosquitto.start()  # on the same port, from its saved state
        up = time.monotonic()
        report.figures.update(run.check_stored_exactly(wills=True))
        report.figures.update(run.check_dead_letters())
        report.figures.update(run.check_alerts())
        log = run.ingester.log_path
        assert log_count(log, "disconnected from broker") >= 1
        assert log_count(log, CONNECTED) >= 2, "the ingester reconnected by itself"
        assert run.ingester.starts == 1 and run.ingester.alive()
        recovery = run.lag.recovery_s(up)
        assert recovery is not None and recovery <= RECOVERY_S, recovery
        run.stop()
        assert unacked > 0, "the devices had messages to send again"
        report.figures.update(broker_down_s=round(up - down, 2),
                              published_while_down=sent_while_down,
                              unacked_by_the_broker_at_restart=unacked,
                              recovery_after_restart_s=round(recovery, 2),
                              runtime_s=run.runtime_s())
        report.show()
    finally:
        run.close()


@pytest.mark.mosquitto
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_postgresql_stopped_for_30_seconds(mosquitto, private_postgres, tmp_path):
    store = BrokerStore(mosquitto.port)
    run = FaultRun(tmp_path, mosquitto, private_postgres.url, speed=180,
                   retry_max_delay_s=2).start()
    report = Report("PostgreSQL stopped 30 s")
    try:
        run.feeder.wait_sent(0.1)
        log = run.ingester.log_path
        retries_before = log_count(log, "storage unavailable")
        stopped = time.monotonic()
        sent_at_stop = run.feeder.sent()
        private_postgres.stop()
        while time.monotonic() < stopped + 30:
            assert run.ingester.alive(), "a database outage must not stop the ingester"
            assert run.scheduler.alive(), "a database outage must not stop the scheduler"
            time.sleep(0.5)
        retries = log_count(log, "storage unavailable") - retries_before
        sent_in_outage = run.feeder.sent() - sent_at_stop
        private_postgres.start()
        resumed = time.monotonic()
        run.db.dispose()  # its connections died with the server
        report.figures.update(run.check_stored_exactly())
        report.figures.update(run.check_dead_letters())
        report.figures.update(run.check_alerts())
        recovery = run.lag.recovery_s(resumed)
        assert recovery is not None and recovery <= RECOVERY_S, recovery
        assert retries >= 3, "the ingester retried while the database was away"
        assert run.ingester.starts == 1 and run.ingester.alive(), "it resumed by itself"

        # Nothing was acknowledged while the database was away: every message sent meanwhile
        # was still held by the broker at each of its counts. A retained status message
        # replaces the one before it in the store, so those may count once less.
        baseline = min(n for t, n in store.samples if t < stopped)
        held_counts = store.between(stopped + 1, resumed)
        assert held_counts, "Mosquitto counts its store every 10 s"
        for moment, held in held_counts:
            sent = run.emissions[sent_at_stop:bisect.bisect_right(run.feeder.sent_at,
                                                                   moment - 0.5)]
            retained = sum(e.retain for e in sent)
            assert held - baseline >= len(sent) - retained, (moment - stopped, held, len(sent))
        # ... and once the ingester caught up, it had acknowledged them all. (Once the store
        # is steady Mosquitto publishes no new count: the test once waited for one, and
        # failed whenever the count had settled before the catch-up.)
        released = store.count_after(time.monotonic() + 0.5)
        assert released - baseline <= 50, (baseline, released)  # $SYS and retained topics
        run.stop()
        report.figures.update(outage_s=round(resumed - stopped, 1),
                              messages_sent_during_outage=sent_in_outage,
                              broker_held_at_last_count=held_counts[-1][1] - baseline,
                              store_count_unchanged_at_end=store.unchanged_at_end,
                              storage_retries_logged=retries,
                              recovery_after_restart_s=round(recovery, 2),
                              runtime_s=run.runtime_s())
        report.show()
    finally:
        run.close()
        store.close()


def poison_burst(emissions: list[Emission], begin: datetime, max_bytes: int,
                 seed: int = SEED) -> list[Emission]:
    """About 300 messages that must never be stored, each with the reason it must get, made
    from the run's own messages so they look like its traffic; sent from `begin` on, one
    every 0.4 simulated seconds, between the run's own messages. 20 are sent twice (still
    one dead letter each)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    telemetry = iter([e for e in emissions if e.kind == "telemetry" and e.valid
                      and e.at >= begin])
    custody = [e for e in emissions if e.kind.startswith("custody.") and "/sites/" in e.topic]
    flights = [e for e in emissions if e.kind.startswith("flight.") and e.fault is None]
    sites = sorted({e.topic.split("/")[3] for e in custody})
    drones = sorted({e.topic.split("/")[3] for e in flights})
    poison: list[Emission] = []

    def add(topic: str, payload: bytes, reason: str, base: Emission) -> None:
        poison.append(Emission(begin + timedelta(seconds=0.4 * len(poison)), topic, payload,
                               "poison", base.event_id, valid=False, fault="poison",
                               expected_reason=reason))

    def edited(emission: Emission, change) -> bytes:
        data = json.loads(emission.payload)
        change(data)
        return json.dumps(data).encode()

    for _ in range(120):  # the simulator's own breakages, spoofed topics among them
        base = next(telemetry)
        topic, payload, how = malform(base.topic, base.payload, rng)
        add(topic, payload, EXPECTED_REASON[how], base)
    impossible = (("battery_pct", 150.0), ("ground_speed_mps", -3.0), ("heading_deg", 360.0),
                  ("alt_m", 20_000.0))
    for i in range(40):
        base, (name, value) = next(telemetry), impossible[i % 4]
        add(base.topic, edited(base, lambda d, n=name, v=value: d.update({n: v})),
            "impossible_value", base)
    naive = now.replace(tzinfo=None).isoformat()
    invalid = (lambda d: d.pop("drone_id"), lambda d: d.update(pilot="nobody"),
               lambda d: d.update(event_time="yesterday"), lambda d: d.update(event_time=naive))
    for i in range(40):
        base = next(telemetry)
        add(base.topic, edited(base, invalid[i % 4]), "schema_invalid", base)
    for i in range(20):
        base, moment = next(telemetry), now + timedelta(days=2) * (1 if i % 2 else -30)
        add(base.topic, edited(base, lambda d, m=moment: d.update(event_time=m.isoformat())),
            "event_time_out_of_range", base)
    for i, base in enumerate(custody[:15]):  # a scanner recording another site's handover
        here = sites.index(base.topic.split("/")[3])
        other = sites[(here + 1 + i % (len(sites) - 1)) % len(sites)]
        add(LAYOUT.site_custody(other), base.payload, "identity_mismatch", base)
    for base in flights[:10]:  # a drone speaking for another
        other = drones[(drones.index(base.topic.split("/")[3]) + 1) % len(drones)]
        add(LAYOUT.flight(other), base.payload, "identity_mismatch", base)
    for i in range(15):
        base = next(telemetry)
        drone = base.topic.split("/")[3]
        topic = (f"{LAYOUT.prefix}/drones/{drone}/selfie", f"{base.topic}/extra",
                 f"{LAYOUT.prefix}/sites/{sites[i % len(sites)]}/gossip")[i % 3]
        add(topic, base.payload, "unknown_topic", base)
    for _ in range(10):
        base = next(telemetry)
        add(base.topic, base.payload + b" " * max_bytes, "oversized", base)
    for i in range(15):
        base = next(telemetry)
        key = base.event_id.encode()
        garbage = (b"\xff\xfe" + key, b'{"event_id": "' + key + b'"', b"{{{" + key)[i % 3]
        add(base.topic, garbage if i else b"", "not_json", base)  # one empty payload
    for again in rng.sample(poison, 20):
        poison.append(Emission(again.at + timedelta(seconds=0.2), again.topic, again.payload,
                               "poison", again.event_id, valid=False, fault="poison",
                               expected_reason=again.expected_reason))
    return poison


@pytest.mark.mosquitto
@pytest.mark.timeout(300)
def test_a_burst_of_poison_messages_in_the_stream(mosquitto, database_url, tmp_path):
    simulation = pingdu_run()
    telemetry = [e for e in simulation.emissions if e.kind == "telemetry"]
    burst = poison_burst(simulation.emissions, telemetry[len(telemetry) // 3].at, 16384)
    run = FaultRun(tmp_path, mosquitto, database_url, speed=400, simulation=simulation,
                   extra=burst, max_payload_bytes=16384).start()
    report = Report(f"poison burst ({database_url.split(':')[0].split('+')[0]})")
    try:
        pid = run.ingester.pid
        first = min(e.at for e in burst)
        started = run.emissions.index(next(e for e in run.emissions if e.at >= first))
        ended = max(run.emissions.index(e) for e in burst)
        interleaved = sum(e.valid for e in run.emissions[started:ended])
        run.feeder.wait_sent(1.0)
        burst_sent = run.feeder.sent_at[ended]
        report.figures.update(run.check_stored_exactly())
        report.figures.update(run.check_dead_letters())
        report.figures.update(run.check_alerts())
        recovery = run.lag.recovery_s(burst_sent)
        assert recovery is not None and recovery <= RECOVERY_S, recovery
        assert run.ingester.alive() and run.ingester.pid == pid, "poison never stops it"
        run.stop()
        report.figures.update(poison_messages=len(burst),
                              distinct_poison=len({(e.topic, e.payload) for e in burst}),
                              valid_messages_interleaved=interleaved,
                              burst_wall_s=round(burst_sent - run.feeder.sent_at[started], 2),
                              recovery_after_burst_s=round(recovery, 2),
                              runtime_s=run.runtime_s())
        report.show()
    finally:
        run.close()


def dispatcher_token(db) -> str:
    now = datetime.now(UTC)
    with db.begin() as connection:
        add_user(connection, "disp-fault", Role.DISPATCHER, now, password="pw-disp-fault")
        return issue_token(connection, "disp-fault", now, timedelta(hours=1))


def api_view(http: httpx.Client, token: str, api: DronelogProcess) -> set[tuple[str, str]]:
    """The API is up, ready, and lists the active alerts: as (kind, subject). Starting up
    and readiness may take a while on a loaded machine; if either never comes, the failure
    says what the last try saw and ends with the API's log."""
    for path, bound in (("/healthz", 60), ("/readyz", 30)):
        last: list[str] = []
        assert wait_until(functools.partial(_answers_ok, http, path, last), bound, 0.2), (
            f"{path} never answered 200 in {bound} s; last: {last[-1:]}; the API is "
            f"{'running' if api.alive() else 'gone'}\n{api.log_text()[-3000:]}")
    page = http.get("/api/v1/alerts", params={"state": "active", "limit": 500},
                    headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == len(body["items"])
    return {(alert["kind"], alert["subject_id"]) for alert in body["items"]}


def _answers_ok(http: httpx.Client, path: str, last: list[str]) -> bool:
    """True on a 200; otherwise what came instead (a status and body, or the transport
    error) is appended to `last`."""
    try:
        response = http.get(path)
    except httpx.TransportError as error:
        last.append(f"{type(error).__name__}: {error}")
        return False
    if response.status_code != 200:
        last.append(f"{response.status_code} {response.text}")
    return response.status_code == 200


def lease_holder(db) -> str | None:
    with db.connect() as connection:
        return connection.execute(text(
            "SELECT holder FROM job_lease WHERE name = 'turnaround'")).scalar()


def seal_changes(outcomes: list[dict]) -> list[tuple[datetime, str, int]]:
    """When a changed seal was found at unloading: (time, flight, specimens unloaded)."""
    flights = {o["flight_id"]: o for o in outcomes if o["type"] == "flight"}
    return sorted((datetime.fromisoformat(o["at"]), o["subject"],
                   len(flights[o["subject"]]["cargo"])) for o in outcomes
                  if o["type"] == "fault" and o["fault"] == "seal_changed")


@pytest.mark.mosquitto
@pytest.mark.timeout(300)
def test_scheduler_and_api_restarted_mid_run(mosquitto, sqlite_url, tmp_path):
    """The scheduler is SIGKILLed (its lease stays until it expires) and later stopped
    cleanly, each time just before a changed seal is unloaded, and started again only once
    the unloading is stored: what was stored while no scheduler ran must raise its alert.
    The API is SIGKILLed and restarted between the two."""
    run = FaultRun(tmp_path, mosquitto, sqlite_url, speed=300, api=True).start()
    report = Report("scheduler and API restarts")
    http = httpx.Client(base_url=f"http://127.0.0.1:{run.api_port}", timeout=10)
    first, second = seal_changes(run.simulation.outcomes)[:2]

    def down_across(seal: tuple[datetime, str, int], stop) -> float:
        """Stop the scheduler before the seal change, start it once that is stored."""
        moment, flight, cargo = seal
        run.feeder.wait_past(moment - timedelta(minutes=2))
        holder = lease_holder(run.db)
        assert holder and f"-{run.scheduler.pid}-" in holder, "the scheduler was working"
        stopped = time.monotonic()
        stop()
        assert wait_until(lambda: count(run.db, "SELECT count(*) FROM custody_event WHERE "
                                                "kind = 'unloaded' AND flight_id = :f",
                                        f=flight) == cargo, 60)
        run.scheduler.start()
        wait_for_log(run.scheduler.log_path, "scheduler started", times=run.scheduler.starts,
                     process=run.scheduler.process)
        return time.monotonic() - stopped

    def stop_cleanly() -> None:
        assert run.scheduler.terminate() == 0  # and its lease released

    try:
        token = dispatcher_token(run.db)
        api_view(http, token, run.api)
        killed_for = down_across(first, run.scheduler.kill)
        run.feeder.wait_sent(0.45)
        run.api.kill()
        run.api.start()
        api_view(http, token, run.api)  # the same token, from the database, after the restart
        stopped_for = down_across(second, stop_cleanly)
        report.figures.update(run.check_stored_exactly())
        report.figures.update(run.check_dead_letters())
        report.figures.update(run.check_alerts())
        assert api_view(http, token, run.api) == expected_alerts(run.simulation.outcomes)
        last_holder = lease_holder(run.db)
        assert last_holder and f"-{run.scheduler.pid}-" in last_holder
        run.stop()
        report.figures.update(scheduler_starts=run.scheduler.starts, api_starts=run.api.starts,
                              scheduler_down_after_sigkill_s=round(killed_for, 1),
                              scheduler_down_after_sigterm_s=round(stopped_for, 1),
                              runtime_s=run.runtime_s())
        report.show()
    finally:
        http.close()
        run.close()
