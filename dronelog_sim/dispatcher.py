"""The demo's clinics and its dispatcher, through the public API, as a clinic's phone and a
dispatcher's browser would use it (POST /api/v1/requests, GET /api/v1/requests,
POST /api/v1/requests/{id}/actions):

- the clinics request flights at the scenario's demand rate (one request per box of
  `tubes_per_box` tubes: a Poisson process per demand line, reproducible from the seed);
- the demo dispatcher assigns each request nobody has acted on for `grace_s` to the suggested
  drone, or hands it to a ground courier when no drone has battery enough. A person who
  assigns, hands over or cancels first takes the request out of its hands: it only acts on
  requests still `requested`.

It never reads the database or imports the product: only the HTTP API and the scenario.

    python -m dronelog_sim.dispatcher --api http://127.0.0.1:8080 --scenario scenarios/pingdu.toml

Logins: the demo's accounts (`lab-<site id>` for each clinic, `dispatcher`), password
`--password` (the demo's `demo1234`).
"""

import argparse
import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from dronelog_sim.scenario import Demand, load_scenario

log = logging.getLogger("dronelog_sim.dispatcher")
COURIER = "courier-demo"


@dataclass(frozen=True)
class Arrival:
    at: datetime
    site: str
    destination: str
    priority: str


def arrivals(demands: Iterable[Demand], start: datetime, end: datetime, rng: random.Random,
             tubes_per_box: float = 4.0) -> list[Arrival]:
    """The requests the clinics make in [start, end): for each demand line, a Poisson
    process of rate per_hour / tubes_per_box."""
    found = []
    for demand in demands:
        rate_per_s = demand.per_hour / tubes_per_box / 3600
        moment = start
        while True:
            moment += timedelta(seconds=rng.expovariate(rate_per_s))
            if moment >= end:
                break
            found.append(Arrival(moment, demand.site, demand.destination, demand.priority))
    return sorted(found, key=lambda a: a.at)


def due_for_the_demo_dispatcher(request: dict, now: datetime, grace: timedelta) -> bool:
    """Nobody has acted on it (still `requested`) for `grace` since it was made."""
    made = datetime.fromisoformat(request["requested_at"].replace("Z", "+00:00"))
    return request["state"] == "requested" and now - made >= grace


class DemoDispatch:
    def __init__(self, base_url: str, clinic_logins: dict[str, tuple[str, str]],
                 dispatcher_login: tuple[str, str], grace_s: float = 60.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.clinic_logins = clinic_logins
        self.dispatcher_login = dispatcher_login
        self.grace = timedelta(seconds=grace_s)
        self.tokens: dict[str, str] = {}

    def _headers(self, login: tuple[str, str]) -> dict:
        user, password = login
        if user not in self.tokens:
            response = self.http.post("/api/v1/auth/token",
                                      data={"username": user, "password": password})
            response.raise_for_status()
            self.tokens[user] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def _call(self, method: str, path: str, login: tuple[str, str], **kwargs) -> httpx.Response:
        response = self.http.request(method, path, headers=self._headers(login), **kwargs)
        if response.status_code == 401:  # expired: sign in again, once
            self.tokens.pop(login[0], None)
            response = self.http.request(method, path, headers=self._headers(login), **kwargs)
        return response

    def request(self, arrival: Arrival) -> str | None:
        """The clinic at `arrival.site` asks for a flight; the request id."""
        login = self.clinic_logins.get(arrival.site)
        if login is None:
            return None
        response = self._call("POST", "/api/v1/requests", login, json={
            "destination_site_id": arrival.destination, "priority": arrival.priority})
        if response.status_code != 201:
            log.warning("request refused: %s %s", response.status_code, response.text[:200])
            return None
        return response.json()["id"]

    def dispatch(self, now: datetime) -> list[tuple[str, str]]:
        """Assign (or hand to a courier) the requests due for the demo dispatcher; what it
        did, as (request id, action)."""
        queue = self._call("GET", "/api/v1/requests?state=requested&limit=50",
                           self.dispatcher_login)
        queue.raise_for_status()
        done = []
        for request in queue.json()["items"]:
            if not due_for_the_demo_dispatcher(request, now, self.grace):
                continue
            path = f"/api/v1/requests/{request['id']}/actions"
            response = self._call("POST", path, self.dispatcher_login, json={"action": "assign"})
            action = "assign"
            if response.status_code == 409 and "No drone" in response.json().get("title", ""):
                action = "to_courier"
                response = self._call("POST", path, self.dispatcher_login,
                                      json={"action": action, "courier_id": COURIER})
            if response.status_code == 200:
                done.append((request["id"], action))
            else:  # a person acted in between, or the plan was refused: leave it to them
                log.info("left %s: %s", request["id"], response.text[:200])
        return done

    def close(self) -> None:
        self.http.close()


def run(dispatch: DemoDispatch, demands: list[Demand], seed: int, stop: threading.Event,
        tick_s: float = 5.0) -> None:
    rng = random.Random(seed)
    last = datetime.now(UTC)
    while not stop.wait(tick_s):
        now = datetime.now(UTC)
        due = list(arrivals(demands, last, now, rng))
        last = now
        try:  # the API may be starting, restarting or gone: the next tick tries again
            for arrival in due:
                dispatch.request(arrival)
            dispatch.dispatch(now)
        except httpx.HTTPError as error:
            log.warning("the API did not answer: %s", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--scenario", type=Path, default=Path("scenarios/pingdu.toml"))
    parser.add_argument("--password", default="demo1234")
    parser.add_argument("--grace-s", type=float, default=60.0,
                        help="a person has this long to act before the demo dispatcher does")
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    scenario = load_scenario(args.scenario)
    clinics = {d.site: (f"lab-{d.site}", args.password) for d in scenario.demand}
    dispatch = DemoDispatch(args.api, clinics, ("dispatcher", args.password), args.grace_s)
    stop = threading.Event()
    try:
        run(dispatch, list(scenario.demand), args.seed, stop)
    except KeyboardInterrupt:
        pass
    finally:
        dispatch.close()


if __name__ == "__main__":
    main()
