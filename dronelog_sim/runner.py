"""Plays a stream of emissions onto the broker at the asked pace, writing the ground truth
(and, if asked, a recording for replay) as it goes, with progress on the terminal."""

import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from dronelog_sim.network import Emission
from dronelog_sim.publisher import DevicePublisher


@dataclass
class RunSummary:
    sent: int = 0
    by_kind: Counter = field(default_factory=Counter)
    by_fault: Counter = field(default_factory=Counter)
    valid_events: int = 0
    acked: bool = True
    wall_seconds: float = 0.0

    def lines(self) -> list[str]:
        rate = self.sent / self.wall_seconds if self.wall_seconds else 0.0
        out = [f"sent {self.sent} messages in {self.wall_seconds:.1f} s ({rate:,.0f}/s); "
               f"{self.valid_events} distinct valid events",
               "by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_kind.items()))]
        if self.by_fault:
            out.append("faults in transport: " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.by_fault.items())))
        if not self.acked:
            out.append("WARNING: the broker did not acknowledge every message in time")
        return out


class Pacer:
    """Simulated time runs `speed` times faster than the wall clock from the first message;
    a speed of 0 means as fast as possible. At speed 1 the simulation keeps the wall clock's
    time: a message is sent at its own time, at once if that has passed (a history is
    caught up at full speed, then the run goes on live)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin: tuple[float, datetime] | None = None

    def wait_for(self, moment: datetime, tick=None, every_s: float = 2.0) -> None:
        """Until `moment` is due; `tick()` every `every_s` of a longer wait (progress)."""
        delay = self._delay(moment)
        while delay > 0:
            time.sleep(min(delay, every_s))
            delay = self._delay(moment)
            if tick is not None and delay > 0:
                tick()

    def _delay(self, moment: datetime) -> float:
        if self.speed <= 0:
            return 0.0
        if self.speed == 1:
            return (moment - datetime.now(UTC)).total_seconds()
        if self._origin is None:
            self._origin = (time.monotonic(), moment)
            return 0.0
        wall0, sim0 = self._origin
        return wall0 + (moment - sim0).total_seconds() / self.speed - time.monotonic()


def play(emissions: Iterable[Emission], publisher: DevicePublisher, speed: float,
         truth: IO[str] | None = None, record: IO[str] | None = None,
         total: int | None = None, progress_every_s: float = 2.0,
         stream: IO[str] = sys.stderr) -> RunSummary:
    summary = RunSummary()
    pacer = Pacer(speed)
    started = next_report = time.monotonic()
    valid_ids: set[str] = set()
    for emission in emissions:
        pacer.wait_for(emission.at, every_s=progress_every_s, tick=lambda at=emission.at: _progress(
            stream, publisher.acked, total, at, started, waiting=True))
        publisher.publish(emission.topic, emission.payload, emission.qos, emission.retain)
        summary.sent += 1
        summary.by_kind[emission.kind] += 1
        if emission.fault:
            summary.by_fault[emission.fault.split(":")[0]] += 1
        if emission.valid and emission.event_id:
            valid_ids.add(emission.event_id)
        if truth:
            truth.write(json.dumps(emission.truth(), ensure_ascii=False) + "\n")
        if record:
            record.write(recording_line(emission) + "\n")
        if time.monotonic() >= next_report:
            _progress(stream, publisher.acked, total, emission.at, started)
            next_report = time.monotonic() + progress_every_s
    summary.acked = publisher.wait_acked()
    summary.wall_seconds = time.monotonic() - started
    summary.valid_events = len(valid_ids)
    return summary


def recording_line(emission: Emission) -> str:
    line = {"at": emission.at.isoformat(), "topic": emission.topic, "qos": emission.qos,
            "retain": emission.retain}
    try:
        line["payload"] = emission.payload.decode("utf-8")
    except UnicodeDecodeError:
        line["payload_b64"] = base64.b64encode(emission.payload).decode("ascii")
    return json.dumps(line, ensure_ascii=False)


def read_recording(path: Path) -> list[Emission]:
    """A recording (from `simulate --record` or `simulate record`) as emissions to replay."""
    emissions = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                payload = (item["payload"].encode("utf-8") if "payload" in item
                           else base64.b64decode(item["payload_b64"]))
                emissions.append(Emission(datetime.fromisoformat(item["at"]), item["topic"],
                                          payload, "replay", None, qos=item.get("qos", 1),
                                          retain=item.get("retain", False)))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a recording line ({error})") from error
    emissions.sort(key=lambda e: e.at)
    return emissions


def _progress(stream: IO[str], sent: int, total: int | None, moment: datetime,
              started: float, waiting: bool = False) -> None:
    """`sent`: messages the broker acknowledged, not merely handed to the client; while a
    live run waits for its next message, the line says so (instead of repeating itself)."""
    rate = sent / max(time.monotonic() - started, 1e-9)
    share = f" of {total} planned ({100 * sent / total:.0f}%)" if total else ""
    now = (f"waiting for the next message at {moment:%Y-%m-%d %H:%M:%S}" if waiting
           else f"simulated time {moment:%Y-%m-%d %H:%M:%S}")
    stream.write(f"  sent {sent}{share}  {now}  {rate:,.0f} msg/s\n")
    stream.flush()
