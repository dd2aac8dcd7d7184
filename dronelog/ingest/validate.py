"""Validate stage: checks that need context the schema cannot see.

- identity and authority: the drone or site named in the topic (the sender's credentials),
  or the user the API authenticated, must be the one the payload speaks for, and may record
  that custody step (domain/custody_rules.py): a scanner at one site cannot record handovers
  at another, a drone records only the loading and unloading of itself;
- event time: not further ahead than the allowed clock skew, not older than the retention of
  late events. Late and out-of-order events inside that window are accepted.
"""

from datetime import datetime, timedelta

from dronelog.contract.messages import CustodyEventBase
from dronelog.domain.custody_rules import Scan, authorize
from dronelog.ingest.delivery import Accepted, Rejected, RejectReason


def check_identity(accepted: Accepted) -> Rejected | None:
    """The sender may record this event: a custody scan passes the custody rules' authority
    check (domain/custody_rules.py); any other event names the drone whose topic it is on."""
    event = accepted.event
    if isinstance(event, CustodyEventBase):
        refusal = authorize(Scan(event.kind, event.site_id, event.actor.kind, event.actor.id,
                                 getattr(event, "drone_id", None)), accepted.sender)
        if refusal is None:
            return None
        return Rejected(accepted.delivery, RejectReason(refusal.code.value), refusal.reason,
                        str(event.event_id))
    subject = accepted.address.subject_id
    if event.drone_id != subject:
        return _mismatch(accepted, f"topic is for drone {subject!r} but the event says "
                                   f"drone_id {event.drone_id!r}")
    return None


def check_event_time(accepted: Accepted, now: datetime, max_future_skew: timedelta,
                     max_age: timedelta) -> Rejected | None:
    event_time = accepted.event.event_time
    if event_time > now + max_future_skew:
        ahead = (event_time - now).total_seconds()
        return Rejected(accepted.delivery, RejectReason.EVENT_TIME_OUT_OF_RANGE,
                        f"event_time {event_time.isoformat()} is {ahead:.0f} s ahead of the "
                        f"ingester's clock (allowed: {max_future_skew.total_seconds():.0f} s)",
                        str(accepted.event.event_id))
    if event_time < now - max_age:
        return Rejected(accepted.delivery, RejectReason.EVENT_TIME_OUT_OF_RANGE,
                        f"event_time {event_time.isoformat()} is older than the accepted "
                        f"{max_age.total_seconds() / 86400:.0f} days", str(accepted.event.event_id))
    return None


def _mismatch(accepted: Accepted, reason: str) -> Rejected:
    return Rejected(accepted.delivery, RejectReason.IDENTITY_MISMATCH, reason,
                    str(accepted.event.event_id))
