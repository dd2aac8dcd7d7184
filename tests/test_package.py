"""The wheel is the product: built from this checkout, installed into a fresh virtual
environment, `dronelog demo` runs from an empty folder on free ports: the dashboards and the
API answer from the files inside the wheel, the simulator's data flows in, and when the demo
is killed outright (SIGKILL, no chance to clean up) none of its children survives.

No network: the wheel is built without build isolation, installed with --no-index, and the
dependencies come from the project's own environment through a .pth file.
"""

import os
import shutil
import signal
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from dronelog.broker import free_port
from tests.processes import Process, descendants, running
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "demo1234"

pytestmark = pytest.mark.timeout(180)


def _clean_copy(target: Path) -> Path:
    """The checkout's files as a fresh clone has them (tracked or not ignored, symlinks kept
    as links): no build/ or *.egg-info of an earlier build can slip files into the wheel."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        origin, copy = ROOT / name, target / name
        if not origin.is_symlink() and not origin.is_file():
            continue  # deleted in the working tree
        copy.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            copy.symlink_to(os.readlink(origin))
        else:
            shutil.copy2(origin, copy)
    return target


def test_the_wheel_runs_the_demo_from_an_empty_folder(tmp_path):
    source = _clean_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=120)
    wheel = next(wheels.glob("dronelog-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("dronelog/shipped/dashboards/index.html",
                    "dronelog/shipped/scenarios/pingdu.toml",
                    "dronelog/shipped/config/turnaround.toml",
                    "dronelog/shipped/schemas/telemetry.schema.json",
                    "dronelog_sim/scenario.py"):
        assert shipped in names
    assert not any(name.startswith("simulators/") for name in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    packages = Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True).stdout.strip())
    # the project's dependencies (and pip), not the project: the .pth adds the folder to
    # sys.path without running its own .pth files, so the editable install stays out
    (packages / "project-dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=120)

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DRONELOG_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    home = tmp_path / "home"
    env.update(DRONELOG_HOME=str(home), DRONELOG_CONFIG=str(tmp_path / "none.toml"))
    where = subprocess.run([python, "-c", "import dronelog, dronelog_sim; "
                            "print(dronelog.__file__); print(dronelog_sim.__file__)"],
                           cwd=empty, env=env, check=True, capture_output=True, text=True)
    assert all(line.startswith(str(venv)) for line in where.stdout.split())

    api_port, broker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    log = tmp_path / "demo.log"
    with open(log, "wb") as output:
        demo = subprocess.Popen([venv / "bin" / "dronelog", "demo", "--port", str(broker_port),
                                 "--api-port", str(api_port)], cwd=empty, env=env,
                                stdout=output, stderr=output, start_new_session=True)
    children: set[Process] = set()
    try:
        def answers() -> bool:
            children.update(descendants(demo.pid))
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(answers, 60, 0.25), log.read_text()[-3000:]
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert httpx.get(f"{base}/js/i18n.js", timeout=10).status_code == 200
        token = httpx.post(f"{base}/api/v1/auth/token", timeout=10, data={
            "username": "dispatcher", "password": PASSWORD}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def flights() -> int:
            children.update(descendants(demo.pid))
            return httpx.get(f"{base}/api/v1/flights?limit=1", headers=headers,
                             timeout=10).json()["total"]

        assert wait_until(flights, 60, 0.5) > 0, log.read_text()[-3000:]
        assert (home / "dronelog.db").is_file()
        assert {p.name for p in (home / "logs").iterdir()} == {
            "ingester.log", "scheduler.log", "api.log", "simulator.log", "dispatcher.log"}
        # the demo's clinics and dispatcher work the request queue through the API
        assert wait_until(lambda: "/api/v1/requests?state=requested" in (
            home / "logs" / "dispatcher.log").read_text(), 30, 0.5)
        assert list(empty.iterdir()) == []  # nothing written where it was started
        assert len(children) >= 5  # broker, scheduler, API, simulator, dispatcher
    finally:
        os.kill(demo.pid, signal.SIGKILL)
        demo.wait(10)
    terminal = log.read_text()
    assert "dashboards: " in terminal and "dead-lettered" not in terminal  # quiet by default
    access = (home / "logs" / "api.log").read_text()
    assert '"GET /api/v1/flights' in access and '"GET /js/i18n.js' not in access
    survivors = wait_until(lambda: not any(map(running, children)), 30, 0.2)
    assert survivors, [process for process in children if running(process)]
