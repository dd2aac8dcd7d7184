"""Alert state changes are conditional, on SQLite and PostgreSQL: the sweep never overwrites a
person's resolution, and of two people resolving (or acknowledging) the same alert only the
first changes it; the second is told it is too late (409 through the API)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from dronelog.api.accounts import Role
from dronelog.domain.alerts import AlertKind, Condition, Reconciliation, reconcile
from dronelog.storage.tables import Alert, AlertChange
from dronelog.turnaround import alert_store

ALERT, CHANGE = Alert.__table__, AlertChange.__table__
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def open_alert(engine, kind=AlertKind.LOST_LINK, subject="F1", subject_kind="flight") -> int:
    with engine.begin() as connection:
        (alert_id,) = alert_store.apply(connection, Reconciliation(to_open=[Condition(
            subject_kind, subject, kind, f"{kind} on {subject}")]), T0)
    return alert_id


def alert_row(engine, alert_id: int):
    with engine.connect() as connection:
        return connection.execute(select(ALERT).where(ALERT.c.id == alert_id)).mappings().one()


def changes_of(engine, alert_id: int) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(
            select(CHANGE.c.change, CHANGE.c.by).where(CHANGE.c.alert_id == alert_id)
            .order_by(CHANGE.c.id))]


def test_the_sweep_does_not_overwrite_a_resolution_made_after_it_read_the_alerts(engine):
    alert_id = open_alert(engine)
    with engine.connect() as sweep_connection:
        known = alert_store.known_alerts(sweep_connection, set())
        sweep_connection.commit()
    stale = reconcile([], known)  # the link is back: the sweep means to resolve it
    assert stale.to_resolve == [(alert_id, "condition cleared")]
    with engine.begin() as dispatcher:  # ...but a dispatcher resolves it first
        alert_store.resolve(dispatcher, alert_id, "disp-1", "pilot called, link fine", T0)
    with engine.begin() as sweep_connection:
        assert alert_store.apply(sweep_connection, stale, T0 + timedelta(seconds=10)) == []
    row = alert_row(engine, alert_id)
    assert (row["resolved_by"], row["resolution_note"]) == ("disp-1", "pilot called, link fine")
    assert changes_of(engine, alert_id) == [("opened", "dronelog"), ("resolved", "disp-1")]


def test_the_sweep_resolves_an_acknowledged_alert_and_reports_only_what_it_changed(engine):
    first, second = open_alert(engine, subject="F1"), open_alert(engine, subject="F2")
    with engine.begin() as connection:
        alert_store.acknowledge(connection, first, "disp-1", T0)
        alert_store.resolve(connection, second, "disp-1", "landed safely", T0)
    changes = Reconciliation(to_resolve=[(first, "condition cleared"),
                                         (second, "condition cleared")])
    with engine.begin() as connection:
        assert alert_store.apply(connection, changes, T0) == [first]
    assert alert_row(engine, first)["resolved_by"] == "dronelog"
    assert alert_row(engine, second)["resolved_by"] == "disp-1"
    assert changes_of(engine, second) == [("opened", "dronelog"), ("resolved", "disp-1")]


def test_a_second_resolve_and_an_acknowledgement_after_it_are_conflicts(engine):
    alert_id = open_alert(engine)
    with engine.begin() as connection:
        alert_store.resolve(connection, alert_id, "disp-1", "done", T0)
    with engine.begin() as connection:
        with pytest.raises(alert_store.AlertConflict, match="already resolved") as again:
            alert_store.resolve(connection, alert_id, "disp-2", "me too", T0)
        assert again.value.state.value == "resolved" and "disp-1" in str(again.value)
        with pytest.raises(alert_store.AlertConflict, match="only an open alert"):
            alert_store.acknowledge(connection, alert_id, "disp-2", T0)
        with pytest.raises(alert_store.AlertNotFound):
            alert_store.resolve(connection, alert_id + 1000, "disp-2", "what?", T0)
    assert alert_row(engine, alert_id)["resolved_by"] == "disp-1"
    assert changes_of(engine, alert_id) == [("opened", "dronelog"), ("resolved", "disp-1")]


@pytest.mark.parametrize("second_change", ["resolve", "acknowledge"])
def test_two_dispatchers_at_once_only_the_first_changes_the_alert(engine, second_change):
    """Dispatcher A's resolution is written but not committed when dispatcher B's change
    reaches its UPDATE; A then commits. Whatever B read before its UPDATE (a check-then-write
    would have read "open"), B must find the alert resolved and change nothing."""
    alert_id = open_alert(engine)
    b_reached_update, outcome = threading.Event(), {}

    def dispatcher_b() -> None:
        with engine.connect() as connection:
            @event.listens_for(connection, "before_cursor_execute")
            def _signal(conn, cursor, statement, parameters, context, executemany):
                if statement.lstrip().upper().startswith("UPDATE ALERT"):
                    b_reached_update.set()

            try:
                with connection.begin():
                    if second_change == "resolve":
                        alert_store.resolve(connection, alert_id, "disp-b", "B's note", T0)
                    else:
                        alert_store.acknowledge(connection, alert_id, "disp-b", T0)
                outcome["b"] = "changed"
            except alert_store.AlertConflict as conflict:
                outcome["b"] = conflict.state.value
            finally:
                b_reached_update.set()

    with engine.connect() as connection_a:
        with connection_a.begin():
            alert_store.resolve(connection_a, alert_id, "disp-a", "A's note", T0)
            b = threading.Thread(target=dispatcher_b)
            b.start()
            assert b_reached_update.wait(30)
        # A commits here, while B is at (or blocked in) its UPDATE
    b.join(60)
    assert not b.is_alive()
    assert outcome == {"b": "resolved"}
    row = alert_row(engine, alert_id)
    assert (row["state"], row["resolved_by"], row["resolution_note"]) == (
        "resolved", "disp-a", "A's note")
    assert row["acknowledged_by"] is None
    assert changes_of(engine, alert_id) == [("opened", "dronelog"), ("resolved", "disp-a")]


def test_through_the_api_two_concurrent_resolves_give_one_200_and_one_409(api, engine):
    alert_id = open_alert(engine)
    dispatcher = api.as_role(Role.DISPATCHER)
    start, responses = threading.Barrier(2), []

    def resolve(note: str) -> None:
        start.wait(10)
        responses.append(api.http.post(f"/api/v1/alerts/{alert_id}/resolve",
                                       headers=dispatcher, json={"note": note}))

    threads = [threading.Thread(target=resolve, args=(note,)) for note in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in responses) == [200, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["content-type"] == "application/problem+json"
    body = conflict.json()
    assert (body["title"], body["status"], body["alert_id"], body["state"]) == (
        "Conflict", 409, alert_id, "resolved")
    assert "already resolved" in body["detail"]
    winner = next(r for r in responses if r.status_code == 200).json()["resolution_note"]
    assert alert_row(engine, alert_id)["resolution_note"] == winner
    assert [c for c, _ in changes_of(engine, alert_id)] == ["opened", "resolved"]

    ack = api.http.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=dispatcher)
    assert ack.status_code == 409
    assert (ack.json()["state"], ack.json()["alert_id"]) == ("resolved", alert_id)
    assert "only an open alert can be acknowledged" in ack.json()["detail"]
    missing = api.http.post("/api/v1/alerts/99999/resolve", headers=dispatcher,
                            json={"note": "x"})
    assert (missing.status_code, missing.json()["title"]) == (404, "Not found")
