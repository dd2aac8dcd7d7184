"""The cold rebuild in chunks (turnaround/rebuild.py) on SQLite and PostgreSQL: the same
projections as one big refresh, a lease renewed before every chunk, a rebuild whose lease
is taken over between chunks stops without writing further, and the next holder resumes
after the last committed chunk."""

from datetime import timedelta

from sqlalchemy import func, select

from dronelog.storage.tables import JobState, SpecimenTracking
from dronelog.turnaround import rebuild, tracker
from dronelog.turnaround.lease import take_lease
from dronelog.turnaround.service import TurnaroundJobs
from tests.test_turnaround import Network, airborne, collected, flight, position
from tests.test_turnaround import net as turnaround_net

net = turnaround_net  # the fixture: the Pingdu network on a manual clock

T = SpecimenTracking.__table__
STATE = JobState.__table__
TTL = timedelta(seconds=30)


def _store_record(net: Network) -> list[str]:
    """Two flights in the air with three specimens each, and nine on the ground."""
    airborne(net, barcodes=("SPA-1", "SPA-2", "SPA-3"), flight_id="F1")
    airborne(net, barcodes=("SPB-1", "SPB-2", "SPB-3"), flight_id="F2")
    net.store(*[position(net.at(6 + s / 60), (36.70, 119.80), seq=s, flight_id=flight_id)
                for s in range(0, 30, 5) for flight_id in ("F1", "F2")])
    ground = [f"SPG-{i}" for i in range(9)]
    net.clock._now = net.at(8)  # stored last: the newest stored_at
    net.store(*[collected(barcode, net.at(3)) for barcode in ground])
    return sorted(ground + ["SPA-1", "SPA-2", "SPA-3", "SPB-1", "SPB-2", "SPB-3"])


def _tracking(engine) -> dict[str, tuple]:
    with engine.connect() as connection:
        return {row.barcode: (row.state, row.deadline, row.stability_until, row.flight_id,
                              row.temp_min_c, row.temp_max_c, row.excursion)
                for row in connection.execute(select(T))}


def _state(engine, name: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(STATE.c.value).where(STATE.c.name == name)).scalar()


def _renew(holder: str):
    return lambda connection, now: take_lease(connection, "turnaround", holder, now, TTL)


def test_a_chunked_rebuild_derives_what_one_refresh_derives(net):
    barcodes = _store_record(net)
    net.clock._now = net.at(10)
    with net.engine.begin() as connection:
        tracker.refresh(connection, net.jobs.limits, net.clock.now())
        connection.execute(STATE.delete())
    whole = _tracking(net.engine)
    with net.engine.begin() as connection:
        connection.execute(T.delete())
    with net.engine.connect() as connection:
        assert rebuild.needed(connection)

    chunks = []

    def record(run: rebuild.RebuildRun) -> None:
        chunks.append((run.flights, run.specimens))
        assert len(chunks) <= 8, chunks  # a cursor that stands still would never finish

    run = rebuild.rebuild(net.engine, net.jobs.limits, net.clock, _renew("scheduler-a"),
                          specimen_chunk=4, flight_chunk=1, on_chunk=record)
    assert run.finished and run.specimens == len(barcodes) and run.flights == 2
    # flights one at a time, then specimens four at a time; the chunk that finds nothing
    # left moves on (flights to specimens) or finishes
    assert chunks == [(1, 0), (2, 0), (2, 0), (2, 4), (2, 8), (2, 12), (2, 15), (2, 15)]
    assert _tracking(net.engine) == whole
    with net.engine.connect() as connection:
        assert not rebuild.needed(connection)
        assert tracker.read_watermark(connection) == net.at(8)
    assert _state(net.engine, rebuild.PROGRESS) is None


def test_a_rebuild_whose_lease_is_taken_between_chunks_stops_without_writing(net):
    barcodes = _store_record(net)
    net.clock._now = net.at(10)
    taken = []

    def take_over(run: rebuild.RebuildRun) -> None:
        if run.specimens == 4 and not taken:  # the first specimen chunk is committed
            # scheduler-a stalls past its lease; scheduler-b takes over
            net.clock._now += TTL + timedelta(seconds=1)
            with net.engine.begin() as connection:
                taken.append(take_lease(connection, "turnaround", "scheduler-b",
                                        net.clock.now(), TTL))

    run = rebuild.rebuild(net.engine, net.jobs.limits, net.clock, _renew("scheduler-a"),
                          specimen_chunk=4, flight_chunk=10, on_chunk=take_over)
    assert taken == [True]
    assert not run.finished and run.specimens == 4
    assert sorted(_tracking(net.engine)) == barcodes[:4]  # nothing after the lost lease
    with net.engine.connect() as connection:
        assert tracker.read_watermark(connection) == tracker.repo.EPOCH
        assert rebuild.needed(connection)

    # scheduler-b resumes after the last committed chunk and finishes
    resumed = rebuild.rebuild(net.engine, net.jobs.limits, net.clock, _renew("scheduler-b"),
                              specimen_chunk=4, flight_chunk=10)
    assert resumed.finished and resumed.flights == 0
    assert resumed.specimens == len(barcodes) - 4
    assert sorted(_tracking(net.engine)) == barcodes
    # scheduler-a, back, neither rebuilds nor sweeps while scheduler-b holds the lease
    assert TurnaroundJobs(net.engine, net.settings, clock=net.clock,
                          holder="scheduler-a").turnaround() is None


def test_a_rebuild_killed_mid_chunk_leaves_the_last_chunk_and_resumes(net, monkeypatch):
    barcodes = _store_record(net)
    net.clock._now = net.at(10)
    real = tracker.derive_specimens
    calls = []

    def dies_on_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process is stopped mid-transaction
        return real(*args, **kwargs)

    monkeypatch.setattr(tracker, "derive_specimens", dies_on_the_second_chunk)
    try:
        rebuild.rebuild(net.engine, net.jobs.limits, net.clock, _renew("scheduler-a"),
                        specimen_chunk=5, flight_chunk=10)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(tracker, "derive_specimens", real)
    assert sorted(_tracking(net.engine)) == barcodes[:5]
    assert f'"after": "{barcodes[4]}"' in _state(net.engine, rebuild.PROGRESS)
    resumed = rebuild.rebuild(net.engine, net.jobs.limits, net.clock, _renew("scheduler-a"),
                              specimen_chunk=5, flight_chunk=10)
    assert resumed.finished and resumed.specimens == len(barcodes) - 5


def test_the_scheduler_rebuilds_from_nothing_then_sweeps(net):
    net.store(collected("SP-1", net.at(0)), flight("planned", net.at(1)))
    run = net.sweep_at(46)
    assert run is not None and ("breach", "SP-1") in net.active()
    with net.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(T)).scalar() == 1
        assert not rebuild.needed(connection)
