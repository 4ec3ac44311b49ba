"""The reaper: a tiny watcher process that makes sure nothing a `bookcast` command started outlives it.

`bookcast` starts processes of its own (the local Prefect server, synthesis workers, ffmpeg). When it
ends normally it stops them itself; when it is killed outright (SIGKILL, the OOM killer) it cannot,
and its children would run on, orphaned. So the CLI starts this watcher first, in its own session,
joined to it by a pipe: the watcher notes the CLI's descendants twice a second, and when the pipe
closes — the CLI has exited, however it died — it terminates every noted process still alive
(checked by creation time, so a recycled PID is never touched), then exits.

Run as `python -m flows.reaper PID` with the pipe on stdin; imports nothing of bookcast's.
"""
from __future__ import annotations

import os
import select
import sys

import psutil

_POLL_S = 0.5
_GRACE_S = 3.0


def _descendants(pid: int) -> dict[int, float]:
    try:
        return {p.pid: p.create_time() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return {}


def _still(pid: int, created: float) -> psutil.Process | None:
    try:
        p = psutil.Process(pid)
        return p if abs(p.create_time() - created) < 1e-3 else None
    except psutil.Error:
        return None


def watch(pid: int, pipe: int) -> None:
    seen: dict[int, float] = {}
    me = os.getpid()
    while True:
        seen.update(_descendants(pid))
        seen.pop(me, None)
        ready, _, _ = select.select([pipe], [], [], _POLL_S)
        if ready and not os.read(pipe, 4096):  # EOF: the CLI is gone
            break
    seen.update(_descendants(pid))  # the CLI may still be exiting normally
    seen.pop(me, None)
    alive = [p for p in (_still(q, t) for q, t in seen.items()) if p is not None]
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=_GRACE_S)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.stdin.fileno())
