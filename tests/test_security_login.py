"""Logging in and out over real HTTP, as an attacker would try it (issue: security hardening).

- A flood of wrong passwords must not take the database pool or the worker threads: no
  connection is held while a password is checked, checks run a few at a time, and a
  dispatcher's requests are answered meanwhile. Every refusal is on record.
- Concurrent attempts cannot pass the limit (SQLite and PostgreSQL).
- Strangers guessing a user's password cannot lock the user out where the user works.
- Logging out revokes the token.

Different client addresses are different loopback source addresses (127.0.0.2, ...), which
Linux routes to the server on 127.0.0.1 like any other client.
"""

import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import event

from dronelog.api import accounts
from dronelog.api.accounts import Role
from dronelog.api.routes import auth
from dronelog.config import Settings
from tests.support import Api, count


@pytest.fixture
def make_api(engine, clock):
    """A running API (no broker: logins do not need one) with the given settings."""
    running = []

    def make(**settings) -> Api:
        api = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9",
                                   **settings), clock)
        running.append(api)
        return api

    yield make
    for api in running:
        api.close()


class WatchedHasher:
    """The real Argon2 hasher, watched: how many checks run at once, and whether the thread
    running one holds a database connection that a login took (it must not). FastAPI may
    return a request's connection from another thread than took it, so connections are
    followed by who took them: a login's are those taken with the login route's `_login`
    on the stack."""

    def __init__(self, engine, slow_s: float = 0.0) -> None:
        self.real = accounts._HASHER
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self.running = self.most_at_once = self.checks = 0
        self.held_connection = []
        self.logins_connections = {}  # connection record -> the thread that took it
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, _dbapi_connection, record, _proxy) -> None:
        frame = sys._getframe()
        while frame is not None and frame.f_code is not auth._login.__code__:
            frame = frame.f_back
        if frame is not None:
            with self.lock:
                self.logins_connections[id(record)] = threading.get_ident()

    def _checkin(self, _dbapi_connection, record) -> None:
        with self.lock:
            self.logins_connections.pop(id(record), None)

    def _watch(self, method, *args):
        with self.lock:
            if threading.get_ident() in self.logins_connections.values():
                self.held_connection.append(threading.current_thread().name)
            self.running += 1
            self.checks += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.slow_s)
            return method(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return self._watch(self.real.hash, password)

    def verify(self, password_hash: str, password: str) -> bool:
        return self._watch(self.real.verify, password_hash, password)


def client_from(api: Api, address: str) -> httpx.Client:
    return httpx.Client(base_url=str(api.http.base_url), timeout=60,
                        transport=httpx.HTTPTransport(local_address=address))


def login(http: httpx.Client, user: str, password: str) -> httpx.Response:
    return http.post("/api/v1/auth/token", data={"username": user, "password": password})


def refusals(engine, user: str | None = None) -> int:
    if user is None:
        return count(engine, "SELECT count(*) FROM login_failure")
    return count(engine, "SELECT count(*) FROM login_failure WHERE user_id = :user", user=user)


def test_a_flood_of_wrong_passwords_leaves_the_dispatcher_served(make_api, engine,
                                                                 monkeypatch):
    """20 wrong-password logins at once (the outside test took the pool with 15), half for a
    real user, half for unknown ones; the dispatcher's /auth/me keeps answering 200."""
    api = make_api(login_max_failures=1000)  # let every attempt reach the password check
    watched = WatchedHasher(engine)
    monkeypatch.setattr(accounts, "_HASHER", watched)
    dispatcher = api.as_role(Role.DISPATCHER)
    start = threading.Barrier(21)

    def attack(i: int) -> httpx.Response:
        with client_from(api, "127.0.0.1") as http:
            start.wait()
            return login(http, "disp-1" if i % 2 else f"nobody-{i}", f"guess-{i}")

    with ThreadPoolExecutor(20) as pool:
        attempts = [pool.submit(attack, i) for i in range(20)]
        start.wait()
        answers = []
        for _ in range(5):
            began = time.monotonic()
            me = api.http.get("/api/v1/auth/me", headers=dispatcher)
            answers.append((me.status_code, time.monotonic() - began))
            time.sleep(0.1)
        responses = [attempt.result() for attempt in attempts]
    assert [status for status, _ in answers] == [200] * 5, answers
    assert max(took for _, took in answers) < 10, answers  # the pool's timeout is 30 s
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {401, 503}, statuses
    assert statuses[401] >= 4, statuses
    for refused in responses:
        if refused.status_code == 503:
            assert int(refused.headers["retry-after"]) >= 1
    assert refusals(engine) == statuses[401]  # every refusal recorded, and nothing else
    assert watched.held_connection == []  # no thread checked a password holding a connection
    assert 0 < watched.most_at_once <= auth.LOGIN_CHECKS
    assert login(api.http, "disp-1", "pw-disp-1").status_code == 200


def test_logins_beyond_the_checks_at_once_are_told_to_come_back(make_api, engine,
                                                                monkeypatch):
    """With one check at a time, each slow, and a short queue, most of 8 logins at once get
    503 with Retry-After instead of waiting; the one let in is checked."""
    monkeypatch.setattr(auth, "LOGIN_CHECKS", 1)
    monkeypatch.setattr(auth, "LOGIN_QUEUE_S", 0.2)
    api = make_api()
    watched = WatchedHasher(engine, slow_s=1.5)
    monkeypatch.setattr(accounts, "_HASHER", watched)
    start = threading.Barrier(8)

    def attempt(i: int) -> httpx.Response:
        with client_from(api, "127.0.0.1") as http:
            start.wait()
            return login(http, f"user-{i}", "guess")

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(8)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses[503] >= 5 and statuses[401] >= 1, statuses
    assert set(statuses) == {401, 503}, statuses
    assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
    assert watched.most_at_once == 1
    assert refusals(engine) == statuses[401]


def race(api: Api, attempts: list[tuple[str, str]]) -> Counter:
    """All `attempts` (user, password) at once from one client; their statuses."""
    start = threading.Barrier(len(attempts))

    def attempt(user_password: tuple[str, str]) -> int:
        with client_from(api, "127.0.0.1") as http:
            start.wait()
            return login(http, *user_password).status_code

    with ThreadPoolExecutor(len(attempts)) as pool:
        return Counter(pool.map(attempt, attempts))


def test_concurrent_attempts_cannot_pass_the_limit(make_api, engine, clock, monkeypatch):
    """12 wrong passwords for one user at once (limit 5): exactly 5 are checked. Then 28
    unknown user ids at once from one client (limit 20 per client): exactly 20 checked."""
    monkeypatch.setattr(auth, "LOGIN_CHECKS", 40)  # let them all race into the database
    monkeypatch.setattr(auth, "LOGIN_QUEUE_S", 60)
    api = make_api()
    assert race(api, [("disp-1", f"guess-{i}") for i in range(12)]) == {401: 5, 429: 7}
    assert refusals(engine, "disp-1") == 5
    clock.advance(901)
    assert race(api, [(f"nobody-{i}", "guess") for i in range(28)]) == {401: 20, 429: 8}
    assert count(engine, "SELECT count(*) FROM login_failure WHERE user_id LIKE 'nobody-%'") == 20


class BrokenHasher:
    def hash(self, *_args) -> str:
        raise RuntimeError("the password check died")

    verify = hash


def test_an_attempt_is_on_record_before_its_password_is_checked(make_api, engine,
                                                                 monkeypatch):
    """A check that never finishes (here: it fails) has already counted as a refusal: the
    outside test's logins that ended in 500 had recorded nothing."""
    api = make_api()
    monkeypatch.setattr(accounts, "_HASHER", BrokenHasher())
    for user in ("disp-1", "nobody"):
        with client_from(api, "127.0.0.1") as http:
            try:  # a 500, or the connection dropped
                assert login(http, user, "guess").status_code == 500
            except httpx.TransportError:
                pass
    assert (refusals(engine, "disp-1"), refusals(engine, "nobody")) == (1, 1)


def test_strangers_cannot_lock_a_user_out_where_the_user_works(make_api, engine, clock):
    """Wrong passwords for `disp-1` from other addresses: each address is held after 5, with
    a delay that doubles; after 20 from everywhere every new address is held, even with the
    right password; the dispatcher's own workstation, which has logged in before, is not.
    An administrator can lift the limit."""
    api = make_api()
    with client_from(api, "127.0.0.1") as desk:
        assert login(desk, "disp-1", "pw-disp-1").status_code == 200  # known from now on
    strangers = [client_from(api, f"127.0.0.{n}") for n in range(2, 7)]
    first = strangers[0]
    for i in range(5):
        assert login(first, "disp-1", f"guess-{i}").status_code == 401
    held = login(first, "disp-1", "pw-disp-1")
    assert held.status_code == 429 and held.headers["retry-after"] == "30", held.text
    clock.advance(31)
    assert login(first, "disp-1", "guess-5").status_code == 401
    held = login(first, "disp-1", "guess-6")
    assert held.status_code == 429 and held.headers["retry-after"] == "60"  # it doubles

    answers = Counter(login(http, "disp-1", f"guess-{i}").status_code
                      for http in strangers[1:4] for i in range(5))
    assert answers == {401: 14, 429: 1}  # the 20th refusal of disp-1 from anywhere holds it
    assert refusals(engine, "disp-1") == 20
    newcomer = login(strangers[4], "disp-1", "pw-disp-1")
    assert newcomer.status_code == 429 and int(newcomer.headers["retry-after"]) >= 30
    assert login(strangers[4], "lab-1", "pw-lab-1").status_code == 200  # others unaffected
    with client_from(api, "127.0.0.1") as desk:
        assert login(desk, "disp-1", "pw-disp-1").status_code == 200  # where disp-1 works
        for i in range(5):  # the workstation itself is still held by its own count
            assert login(desk, "disp-1", f"typo-{i}").status_code == 401
        assert login(desk, "disp-1", "pw-disp-1").status_code == 429

    assert api.http.delete("/api/v1/auth/login-limits/disp-1",
                           headers=api.as_role(Role.DISPATCHER)).status_code == 403
    lifted = api.http.delete("/api/v1/auth/login-limits/disp-1",
                             headers=api.as_role(Role.ADMIN))
    assert lifted.status_code == 200, lifted.text
    assert lifted.json() == {"user_id": "disp-1", "refusals_forgotten": 25}
    assert login(strangers[4], "disp-1", "pw-disp-1").status_code == 200
    assert count(engine, "SELECT count(*) FROM audit_log WHERE action = 'login.lift_limit' "
                         "AND subject = 'disp-1'") == 1
    for http in strangers:
        http.close()


def test_logging_out_revokes_the_token_it_presents(make_api):
    api = make_api()
    tokens = [login(api.http, "disp-1", "pw-disp-1").json()["access_token"] for _ in range(2)]
    this, other = ({"Authorization": f"Bearer {token}"} for token in tokens)
    assert api.http.get("/api/v1/auth/me", headers=this).status_code == 200
    out = api.http.post("/api/v1/auth/logout", headers=this)
    assert out.status_code == 204, out.text
    assert api.http.get("/api/v1/auth/me", headers=this).status_code == 401
    assert api.http.get("/api/v1/specimens", headers=this).status_code == 401
    assert api.http.get("/api/v1/auth/me", headers=other).status_code == 200  # another session
    assert api.http.post("/api/v1/auth/logout", headers=this).status_code == 401
    assert api.http.post("/api/v1/auth/logout").status_code == 401


def test_a_new_password_ends_the_users_sessions(make_api):
    api = make_api()
    token = login(api.http, "disp-1", "pw-disp-1").json()["access_token"]
    session = {"Authorization": f"Bearer {token}"}
    admin = api.as_role(Role.ADMIN)
    renamed = api.http.patch("/api/v1/admin/users/disp-1", headers=admin,
                             json={"display_name": "Dispatch desk"})
    assert renamed.status_code == 200
    assert api.http.get("/api/v1/auth/me", headers=session).status_code == 200
    changed = api.http.patch("/api/v1/admin/users/disp-1", headers=admin,
                             json={"password": "a new long passphrase"})
    assert changed.status_code == 200, changed.text
    assert api.http.get("/api/v1/auth/me", headers=session).status_code == 401
    assert api.http.get("/api/v1/auth/me", headers=api.as_role(Role.DISPATCHER)).status_code == 401
    assert login(api.http, "disp-1", "pw-disp-1").status_code == 401
    assert login(api.http, "disp-1", "a new long passphrase").status_code == 200
