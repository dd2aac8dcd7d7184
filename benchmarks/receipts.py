"""The receipt path alone, without broker or database: 100,000 stored events from 10,000
drones in batches of 500, a batch every 55 ms, through `sort_outcomes`, the 5-s
`ReceiptHold` and the receipts it makes due (docs/benchmarks.md, "Receipts").

    .venv/bin/python benchmarks/receipts.py [--events N] [--drones N] [--hold-s S]
"""

import argparse
import time
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from dronelog.contract.topics import Channel, TopicAddress, TopicLayout
from dronelog.ingest.delivery import Accepted, Delivery
from dronelog.ingest.receipts import ReceiptHold, sort_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--drones", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--hold-s", type=float, default=5.0)
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
    receipts = 0
    now = 0.0
    for n, (sorted_out, result) in enumerate(batches):
        now = n * 0.055
        started = time.perf_counter()
        hold.add(sort_outcomes(sorted_out, result, layout), now)
        middle = time.perf_counter()
        receipts += len(hold.due(now, datetime.now(UTC)))
        due += time.perf_counter() - middle
        sorting += middle - started
    started = time.perf_counter()
    receipts += len(hold.due(now, datetime.now(UTC), everything=True))
    due += time.perf_counter() - started
    print(f"{args.events} events, {receipts} receipts: sort and hold {sorting:.3f} s, "
          f"due receipts built {due:.3f} s, total {sorting + due:.3f} s")


if __name__ == "__main__":
    main()
