"""`/docs` and `/redoc` (issue 15, finding 7): they loaded unpinned scripts from a CDN with
no Content-Security-Policy, and were blank offline. Now they come from packaged assets
under a policy that allows only this origin and the page's own hashed inline script. A real
Chromium opens both with every other host unreachable and must render the API's operations
with no policy violation.
"""


import pytest

from dronelog.config import Settings
from tests.support import Api, chromium


@pytest.fixture
def api(engine, clock):
    running = Api(engine, Settings(database_url=str(engine.url), mqtt_url="mqtt://127.0.0.1:9"),
                  clock)
    yield running
    running.close()


@pytest.fixture
def browser():
    with chromium() as instance:
        yield instance


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no storage involved
@pytest.mark.parametrize("path, rendered", [
    ("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id^='tag/auth']")])
def test_the_documentation_renders_offline_under_its_policy(api, browser, path, rendered):
    base = str(api.http.base_url).rstrip("/")
    headers = api.http.get(path).headers
    policy = headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy or path == "/redoc"
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "cdn" not in api.http.get(path).text and "https://" not in api.http.get(path).text

    page = browser.new_page()
    elsewhere, violations = [], []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
               else (elsewhere.append(route.request.url), route.abort()))
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    try:
        page.goto(f"{base}{path}")
        page.wait_for_selector(rendered, timeout=60_000)
        assert page.locator(rendered).count() >= 1
    finally:
        page.close()
    # ReDoc's sidebar asks for Redocly's logo from cdn.redoc.ly: the policy blocks that, as it
    # should; nothing of the page itself may be blocked.
    own = [text for text in violations if "https://cdn.redoc.ly/" not in text]
    assert elsewhere == [] and own == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_the_packaged_assets_are_served(api):
    assert api.http.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert api.http.get("/docs/assets/..%2Fcore.py").status_code == 404
    assert api.http.get("/docs/assets/core.py").status_code == 404
