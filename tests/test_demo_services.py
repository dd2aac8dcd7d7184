"""`dronelog demo` watches its services: when one it cannot go on without stops by itself, the
demo says which, where its log is, and stops everything with an error; a normal stop says
nothing of the kind (dronelog/cli/demo.py, `watch_services`)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from dronelog.broker import free_port
from tests.processes import children, running
from tests.support import wait_for_log, wait_until

pytestmark = pytest.mark.timeout(180)


def _start_demo(home: Path) -> tuple[subprocess.Popen, str, Path]:
    api_port = free_port()
    log = home / "terminal.log"
    env = {**os.environ, "DRONELOG_HOME": str(home),
           "DRONELOG_DATABASE_URL": f"sqlite:///{home / 'demo.db'}",
           "DRONELOG_CONFIG": str(home / "none.toml")}
    with open(log, "wb") as out:
        demo = subprocess.Popen([sys.executable, "-m", "dronelog", "demo", "--no-simulator",
                                 "--port", str(free_port()), "--api-port", str(api_port)],
                                cwd=home, env=env, stdout=out, stderr=out,
                                start_new_session=True)
    base = f"http://127.0.0.1:{api_port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(answers, 90, 0.25), log.read_text()[-3000:]
    return demo, base, log


def _service(demo: subprocess.Popen, name: str):
    """The demo's child running `dronelog <name>`."""
    for child in children(demo.pid):
        try:
            arguments = Path(f"/proc/{child.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments[-2:] == [name.encode(), b""]:
            return child
    raise AssertionError(f"no {name} under the demo")


# the API killed; the scheduler stopped cleanly from outside (exit code 0, once it has started
# and handles SIGTERM): the demo is nothing without either, failed or not
@pytest.mark.parametrize(("service", "end", "code", "other"), [
    ("api", signal.SIGKILL, -9, "scheduler"), ("scheduler", signal.SIGTERM, 0, "api")])
def test_a_demo_whose_essential_service_stops_says_so_and_stops_everything(
        tmp_path, service, end, code, other):
    demo, _, log = _start_demo(tmp_path)
    try:
        stopped, survivor = _service(demo, service), _service(demo, other)
        wait_for_log(tmp_path / "logs" / "scheduler.log", "scheduler started")
        assert running(stopped)
        os.kill(stopped.pid, end)
        assert demo.wait(60) == 1
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    terminal = log.read_text()
    told = f"the {service} stopped (exit code {code}); its log: {tmp_path / 'logs' / service}.log"
    assert told in terminal, terminal[-2000:]
    assert f"the demo stopped because its {service} stopped" in terminal
    assert f"the {other} stopped" not in terminal  # stopped by the demo: not news
    assert wait_until(lambda: not running(survivor), 10, 0.1)


def test_a_demo_stopped_by_its_user_tells_of_no_service(tmp_path):
    demo, _, log = _start_demo(tmp_path)
    try:
        scheduler = _service(demo, "scheduler")
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert " stopped (exit code" not in log.read_text()
    assert wait_until(lambda: not running(scheduler), 10, 0.1)
