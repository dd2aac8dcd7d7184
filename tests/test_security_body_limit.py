"""Request bodies are limited on every route, before authentication, while they are read
(dronelog/api/body_limit.py). The outside test grew the API from 130 to 226 MiB with one
60 MB `PUT /api/v1/admin/sites/x` and no token, answered 401 only after the whole body."""

import tracemalloc

import httpx
import pytest

from dronelog.api.accounts import Role
from dronelog.api.body_limit import MAX_BODY_BYTES
from dronelog.config import Settings
from tests.support import Api

PROBLEM = "application/problem+json"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
# (method, path, content type, the answer to a chunked body over the limit: 413 where the
# route reads its body; a route that reads none answers as it would anyway)
ROUTES = [("PUT", "/api/v1/admin/sites/x", JSON, 413), ("POST", "/api/v1/auth/token", FORM, 413),
          ("POST", "/api/v1/alerts/1/resolve", JSON, 413),
          ("PATCH", "/api/v1/admin/users/lab-1", JSON, 413),
          ("POST", "/api/v1/auth/logout", JSON, 401), ("GET", "/api/v1/specimens", JSON, 401),
          ("POST", "/api/v1/nothing-here", JSON, 404)]


@pytest.fixture
def api(engine, clock):
    running = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9"),
                  clock)
    yield running
    running.close()


def chunks(total: int, size: int = 65_536):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


def send(api: Api, method: str, path: str, body, headers=None) -> httpx.Response:
    with httpx.Client(base_url=str(api.http.base_url), timeout=60) as http:
        return http.request(method, path, content=body, headers=headers or {})


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 413 and f"limit of {MAX_BODY_BYTES}" in problem["detail"]


@pytest.mark.parametrize("method, path, content_type, chunked_answer", ROUTES)
def test_a_huge_body_without_a_token_is_refused_before_it_is_read(api, method, path,
                                                                  content_type, chunked_answer):
    headers = {"Content-Type": content_type}
    assert_too_large(send(api, method, path, b"x" * 60_000_000, headers))  # Content-Length
    chunked = send(api, method, path, chunks(60_000_000), headers)  # no length
    if chunked_answer == 413:
        assert_too_large(chunked)
    else:
        assert chunked.status_code == chunked_answer, chunked.text[:300]


def test_the_limit_holds_for_authenticated_callers_and_bodies_within_it_pass(api):
    admin = api.as_role(Role.ADMIN)
    assert_too_large(send(api, "PUT", "/api/v1/admin/sites/x", chunks(MAX_BODY_BYTES + 1),
                          {**admin, "Content-Type": "application/json"}))
    at_limit = send(api, "PUT", "/api/v1/admin/sites/x", b" " * MAX_BODY_BYTES,
                    {**admin, "Content-Type": "application/json"})
    assert at_limit.status_code == 422  # read whole and judged by the route: not JSON
    chunked = send(api, "PUT", "/api/v1/admin/sites/x", chunks(MAX_BODY_BYTES, 1000),
                   {**admin, "Content-Type": "application/json"})
    assert chunked.status_code == 422
    assert send(api, "PUT", "/api/v1/admin/sites/x", b"{}").status_code == 401
    # the server is still fine, and so are ordinary requests
    assert api.http.get("/api/v1/auth/me", headers=admin).status_code == 200


def test_a_chunked_body_over_the_limit_is_not_held_in_memory(api):
    tracemalloc.start()
    try:
        response = send(api, "PUT", "/api/v1/admin/sites/x", chunks(20_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_too_large(response)
    assert peak < 2 * MAX_BODY_BYTES + 1_000_000, f"{peak / 1e6:.1f} MB held"


def test_the_custody_entrance_keeps_its_own_limit_and_answer(api):
    """Its limit is the contract's payload limit, refused as the ingester refuses it."""
    device = api.as_role(Role.DEVICE)
    for body in (b" " * 2_000_000, chunks(2_000_000)):
        response = send(api, "POST", "/api/v1/custody", body,
                        {**device, "Content-Type": "application/json"})
        assert response.status_code == 422 and response.json()["reason_code"] == "oversized"
    assert send(api, "POST", "/api/v1/custody", b" " * 2_000_000).status_code == 401
