"""Reconciling conditions with stored alerts: one active alert per subject and kind, state
alerts clear themselves, latched alerts wait for a person and never come back twice."""

from dronelog.domain.alerts import (
    AlertKind,
    AlertState,
    Condition,
    KnownAlert,
    Severity,
    reconcile,
)


def condition(kind: AlertKind, subject: str = "S1", subject_kind: str = "specimen"):
    return Condition(subject_kind, subject, kind, f"{kind} on {subject}")


def known(alert_id: int, kind: AlertKind, state=AlertState.OPEN, subject="S1",
          subject_kind="specimen"):
    return KnownAlert(alert_id, subject_kind, subject, kind, state)


def test_a_new_condition_opens_an_alert_once():
    changes = reconcile([condition(AlertKind.LOST_LINK, "F1", "flight")], [])
    assert [c.kind for c in changes.to_open] == [AlertKind.LOST_LINK]
    again = reconcile([condition(AlertKind.LOST_LINK, "F1", "flight")],
                      [known(1, AlertKind.LOST_LINK, subject="F1", subject_kind="flight")])
    assert again.to_open == [] and again.to_resolve == []


def test_an_acknowledged_alert_is_still_the_one_alert():
    changes = reconcile([condition(AlertKind.OFF_ROUTE, "F1", "flight")],
                        [known(4, AlertKind.OFF_ROUTE, AlertState.ACKNOWLEDGED, "F1",
                               "flight")])
    assert changes.to_open == [] and changes.to_resolve == []


def test_a_state_alert_resolves_itself_when_its_condition_clears():
    changes = reconcile([], [known(7, AlertKind.LOW_BATTERY, subject="F2",
                                   subject_kind="flight")])
    assert changes.to_resolve == [(7, "condition cleared")]


def test_a_state_alert_comes_back_when_its_condition_returns():
    changes = reconcile([condition(AlertKind.LOST_LINK, "F1", "flight")],
                        [known(1, AlertKind.LOST_LINK, AlertState.RESOLVED, "F1", "flight")])
    assert [c.kind for c in changes.to_open] == [AlertKind.LOST_LINK]


def test_a_latched_alert_stays_until_a_person_resolves_it_and_never_returns():
    still_open = reconcile([], [known(2, AlertKind.TEMPERATURE_EXCURSION)])
    assert still_open.to_resolve == []
    after_resolution = reconcile([condition(AlertKind.TEMPERATURE_EXCURSION)],
                                 [known(2, AlertKind.TEMPERATURE_EXCURSION,
                                        AlertState.RESOLVED)])
    assert after_resolution.to_open == []


def test_a_breach_replaces_the_warning_and_the_prediction():
    conditions = [condition(AlertKind.TURNAROUND_WARNING), condition(AlertKind.PREDICTED_BREACH),
                  condition(AlertKind.BREACH)]
    changes = reconcile(conditions, [known(1, AlertKind.TURNAROUND_WARNING),
                                     known(2, AlertKind.PREDICTED_BREACH)])
    assert [c.kind for c in changes.to_open] == [AlertKind.BREACH]
    assert sorted(changes.to_resolve) == [(1, "condition cleared"), (2, "condition cleared")]


def test_a_prediction_replaces_the_warning_on_the_same_specimen_only():
    changes = reconcile([condition(AlertKind.TURNAROUND_WARNING, "S1"),
                         condition(AlertKind.PREDICTED_BREACH, "S1"),
                         condition(AlertKind.TURNAROUND_WARNING, "S2")], [])
    assert sorted((c.subject_id, c.kind) for c in changes.to_open) == [
        ("S1", AlertKind.PREDICTED_BREACH), ("S2", AlertKind.TURNAROUND_WARNING)]


def test_severity_ranks_what_cannot_wait_highest():
    assert condition(AlertKind.BREACH).severity is Severity.CRITICAL
    assert condition(AlertKind.TEMPERATURE_EXCURSION).severity is Severity.CRITICAL
    assert condition(AlertKind.LOST_LINK).severity is Severity.HIGH
    assert condition(AlertKind.TURNAROUND_WARNING).severity is Severity.MEDIUM
