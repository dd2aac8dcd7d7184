"""The test helpers that signal other processes name them by pid and start time: a pid whose
process has ended and been handed to a later one is left alone (tests/processes.py)."""

import os
import subprocess
import sys

from tests.processes import Process, children, kill, running


def test_a_pid_handed_to_a_later_process_is_not_that_process_and_is_not_killed():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (seen,) = {process for process in children(os.getpid()) if process.pid == child.pid}
        assert running(seen)
        earlier = Process(seen.pid, seen.started - 1)  # the pid's earlier owner, long gone
        assert not running(earlier)
        kill(earlier)
        assert child.poll() is None and running(seen)
        kill(seen)
        assert child.wait(10) == -9 and not running(seen)
    finally:
        child.kill()
        child.wait(10)
