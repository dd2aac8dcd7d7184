"""Other processes, seen through /proc, named by their pid *and* their start time.

A pid alone is not a name: once its process has ended the kernel hands the number to the next
process it starts (here `pid_max` is 32768, and a test run starts tens of thousands), so a pid
noted minutes ago may now be another test's API. A signal sent to such a pid killed the API
of a demo in another worker; `Process` and `kill` cannot.
"""

import os
import signal
from pathlib import Path
from typing import NamedTuple


class Process(NamedTuple):
    pid: int
    started: int  # clock ticks after boot (/proc/<pid>/stat, field 22)


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat from the third (the state) on; None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _all() -> dict[Process, int]:
    """Every process now, with its parent's pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields:
            found[Process(int(entry.name), int(fields[19]))] = int(fields[1])
    return found


def children(pid: int) -> set[Process]:
    """The processes whose parent is `pid`."""
    return {process for process, parent in _all().items() if parent == pid}


def descendants(pid: int) -> set[Process]:
    """Every process below `pid`: children, grandchildren and so on."""
    parents = _all()
    found: set[Process] = set()
    frontier = {pid}
    while frontier:
        below = {process for process, parent in parents.items() if parent in frontier}
        found |= below
        frontier = {process.pid for process in below}
    return found


def running(process: Process) -> bool:
    """`process` itself is still there and not a zombie (not a later one given its pid)."""
    fields = _stat(process.pid)
    return fields is not None and int(fields[19]) == process.started and fields[0] != "Z"


def kill(process: Process) -> None:
    """SIGKILL to `process` if it is still running, never to a later process with its pid."""
    if running(process):
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
