"""The receipt path alone, without broker or database: 100,000 stored events from 10,000
drones in batches of 500, a batch every 55 ms, through `sort_outcomes`, the 5-s
`ReceiptHold` and the receipts it makes due (docs/benchmarks.md, "Receipts"). With
`--publish`, the receipts also go out through the ingester's `ReceiptConnection` (paho, QoS 1)
to a private Mosquitto, and the process's CPU time per receipt is given, its PUBACKs included.

    .venv/bin/python benchmarks/receipts.py [--events N] [--drones N] [--hold-s S]
        [--publish] [--protocol 5|3.1.1]
"""

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from dronelog.broker import MosquittoBroker
from dronelog.contract.topics import Channel, TopicAddress, TopicLayout
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.ingest.mqtt_source import BrokerAddress
from dronelog.ingest.receipt_connection import ReceiptConnection
from dronelog.ingest.receipts import ReceiptHold, sort_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--drones", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--hold-s", type=float, default=5.0)
    parser.add_argument("--publish", action="store_true",
                        help="publish the receipts to a private Mosquitto, and time that")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    args = parser.parse_args()
    layout = TopicLayout()
    # as triage hands them over: the sender is the topic's (over MQTT), found per event
    addresses = [TopicAddress(Channel.TELEMETRY, f"uav-{i:05d}")
                 for i in range(args.drones)]
    ids = [uuid.uuid4() for _ in range(args.events)]
    received = datetime.now(UTC)
    batches = []  # what triage and the writer hand over: accepted events, the new ids
    for start in range(0, args.events, args.batch):
        part = range(start, min(start + args.batch, args.events))
        accepted = [Accepted(Delivery(layout.telemetry(addresses[i % args.drones]
                                                             .subject_id), b"", received),
                             addresses[i % args.drones], SimpleNamespace(event_id=ids[i]))
                    for i in part]
        batches.append((SimpleNamespace(accepted=accepted, rejected=[]),
                        SimpleNamespace(new_ids={ids[i] for i in part}, duplicate_ids=set())))
    hold = ReceiptHold(layout, args.hold_s)
    sorting = due = 0.0
    made = []
    now = 0.0
    for n, (sorted_out, result) in enumerate(batches):
        now = n * 0.055
        started = time.perf_counter()
        hold.add(sort_outcomes(sorted_out, result, layout), now)
        middle = time.perf_counter()
        made += hold.due(now, datetime.now(UTC))
        due += time.perf_counter() - middle
        sorting += middle - started
    started = time.perf_counter()
    made += hold.due(now, datetime.now(UTC), everything=True)
    due += time.perf_counter() - started
    print(f"{args.events} events, {len(made)} receipts: sort and hold {sorting:.3f} s, "
          f"due receipts built {due:.3f} s, total {sorting + due:.3f} s")
    if args.publish:
        publish(made, args.protocol)


def publish(receipts: list, protocol: str) -> None:
    """Every receipt through a ReceiptConnection, as the ingester sends them, until the
    broker has answered all: the process's CPU time (both of paho's threads) and wall time."""
    with tempfile.TemporaryDirectory() as folder:
        broker = MosquittoBroker(folder).start()
        connection = ReceiptConnection(BrokerAddress.parse(broker.url), "bench-receipts",
                                       protocol=protocol, outbox_limit=len(receipts) + 1)
        try:
            connection.start()
            assert connection.wait_connected(10), "no connection to the private broker"
            cpu, wall = time.process_time(), time.perf_counter()
            refused = sum(not connection.publisher.publish(r.topic, r.payload)
                          for r in receipts)
            left = connection.publisher.settle(120)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            connection.stop()
            broker.stop()
    each = 1e6 / max(1, len(receipts))
    print(f"published over MQTT {protocol}: {len(receipts)} receipts ({refused} refused, "
          f"{left} unanswered), process CPU {cpu:.3f} s ({cpu * each:.1f} us per receipt), "
          f"wall {wall:.3f} s")


if __name__ == "__main__":
    main()
