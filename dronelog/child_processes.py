"""Children that end with the process that started them (the demo's broker, scheduler, API
and simulator), however it ends: Ctrl-C, SIGTERM, a closed terminal (SIGHUP) or SIGKILL.

Two guards: on Linux the kernel sends the child SIGTERM when its parent dies
(PR_SET_PDEATHSIG, set between fork and exec by `die_with_parent`); everywhere, a child
started with DRONELOG_PARENT_PID watches that process and stops itself when it is gone
(`watch_parent`, a watchdog thread). Each child also runs in its own process group, so a
Ctrl-C in the terminal reaches only the demo, which then stops its children in order.
"""

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_ENV = "DRONELOG_PARENT_PID"
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A `preexec_fn`: the kernel sends this child SIGTERM when its parent exits (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def watch_parent(interval_s: float = 1.0) -> threading.Thread | None:
    """If DRONELOG_PARENT_PID names a process, stop this one (SIGTERM to itself) once that
    process is gone or this one has been handed to another parent."""
    value = os.environ.get(PARENT_ENV)
    if not value or not value.isdigit():
        return None
    parent = int(value)

    def watch() -> None:
        while _alive(parent) and os.getppid() == parent:
            time.sleep(interval_s)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
