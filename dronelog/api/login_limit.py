"""The login attempt limit, as a decision over plain values: refusals in, a wait out.

Three counters, each over the refusals of the last `window` (docs/security.md, "Login
attempt limit"):

- the pair (user id, client address): `max_failures` refusals;
- the client address, whatever the user ids: 4 x `max_failures` (one address spraying ids);
- the user id, whatever the addresses: 4 x `max_failures` (many addresses guessing one
  password), applied only to addresses that have not logged in as this user before.

A counter over its limit does not lock anything for the rest of the window: it asks for a
wait after its newest refusal that doubles with every further refusal (`first_delay`, then
2x, 4x, ... up to `window`). A pair that has logged in successfully before (a known client)
is held only by its own counter, so strangers guessing a user's password elsewhere cannot
lock that user out of the places where the user works.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

CLIENT_FACTOR = 4  # a client's and a user's limits, in multiples of the pair's
FIRST_DELAY = timedelta(seconds=30)
KNOWN_CLIENT_FOR = timedelta(days=90)  # a successful login makes its address known this long


@dataclass(frozen=True)
class Refusals:
    """The refusals of one counter within the window, other than the attempt being decided."""

    count: int
    newest: datetime | None


NONE = Refusals(0, None)


@dataclass(frozen=True)
class LoginLimits:
    max_failures: int
    window: timedelta
    first_delay: timedelta = FIRST_DELAY

    def delay(self, refusals: int, limit: int) -> timedelta | None:
        """The wait after the newest of `refusals` (None: under the limit, no wait)."""
        if refusals < limit:
            return None
        doublings = min(refusals - limit, 32)
        return min(self.window, self.first_delay * 2 ** doublings)


def wait_until(limits: LoginLimits, pair: Refusals, client: Refusals, user: Refusals,
               known_client: bool) -> datetime | None:
    """Until when this attempt must wait (None: it may be checked now).

    The caller compares the answer with its clock; the decision itself takes no time."""
    counters = [(pair, limits.max_failures)]
    if not known_client:
        counters += [(client, CLIENT_FACTOR * limits.max_failures),
                     (user, CLIENT_FACTOR * limits.max_failures)]
    until = None
    for refusals, limit in counters:
        delay = limits.delay(refusals.count, limit)
        if delay is not None and refusals.newest is not None:
            candidate = refusals.newest + delay
            until = candidate if until is None else max(until, candidate)
    return until
