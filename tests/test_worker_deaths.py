"""Worker processes that die: a synthesis or mastering worker killed (the OOM killer, a kill -9)
must cost a restart, never a hung run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from flows.steps.mastering_pool import ProcessMastering
from synth.pool import ProcessPool

ROOT = Path(__file__).resolve().parents[1]

_ONE_KILLED_MID_RESULT = '''
import multiprocessing.connection as connection, os, signal, sys, time
from pathlib import Path
from synth.pool import ProcessPool

MARK = Path(sys.argv[1])

def _die_half_sent(self, buf):
    """The worker's result write, cut off halfway by a SIGKILL (as a kill at a random moment can)."""
    half = memoryview(buf)[: len(buf) // 2]
    while len(half):
        half = half[os.write(self._handle, half):]
    os.kill(os.getpid(), signal.SIGKILL)

def big_once():
    """50 MB; the first time, the worker dies while sending it."""
    if not MARK.exists():
        MARK.touch()
        connection.Connection._send = lambda self, buf, _s=connection.Connection._send: (
            _die_half_sent(self, buf) if len(buf) > (1 << 20) else _s(self, buf))
    return b"x" * (50 << 20)

def slow():
    time.sleep(4)  # the sibling stays alive, holding its end of the result pipe
    return "slow"

if __name__ == "__main__":
    pool = ProcessPool(2, [])
    [f.result() for f in [pool._submit(time.sleep, 0.5) for _ in range(2)]]  # both workers up
    sibling, victim = pool._submit(slow), pool._submit(big_once)
    assert len(victim.result(timeout=120)) == 50 << 20
    assert sibling.result(timeout=120) == "slow"
    assert pool.restarts.count == 1, pool.restarts.count
    pool.close()
    print("ok")
'''


def test_one_worker_killed_mid_result_restarts_the_pool(tmp_path: Path) -> None:
    """One worker of two SIGKILLed halfway through sending its result: the pool's reader waited
    for the rest of the message forever (the live sibling still held the pipe open), so the pool
    was never marked broken and `bookcast make` hung. Now the dead worker's siblings are stopped,
    the pool restarts, and both batches come back."""
    script = tmp_path / "kill_one.py"
    script.write_text(_ONE_KILLED_MID_RESULT, encoding="utf-8")
    try:
        proc = subprocess.run([sys.executable, str(script), str(tmp_path / "died")], check=False, cwd=ROOT, timeout=90,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("the pool hung after one worker died mid-result")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_the_pool_guard_ends_with_the_pool() -> None:
    """Each executor gets a thread watching its workers; closing the pool (or restarting it) must
    end that thread, or a long run would collect one per restart."""
    def guards() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "bookcast-pool-guard"}

    before = guards()
    pool = ProcessPool(1, [])
    pool._submit(int).result(timeout=60)
    ours = guards() - before
    assert len(ours) == 1
    pool.close()
    ours.pop().join(5)
    assert not guards() - before


def test_a_mastering_worker_that_dies_is_replaced() -> None:
    """The chapter a dead mastering worker held fails with BrokenProcessPool (the export task
    retries it); the next chapter gets fresh workers instead of the broken pool."""
    pool = ProcessMastering()
    try:
        first = pool.run(os.getpid)
        outcome: list[BaseException | None] = []

        def chapter() -> None:
            try:
                pool.run(time.sleep, 30)
                outcome.append(None)
            except BaseException as exc:  # noqa: BLE001 - the test looks at it below
                outcome.append(exc)

        running = threading.Thread(target=chapter)
        running.start()
        time.sleep(1.0)
        for process in list(pool._executor._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        running.join(60)
        assert not running.is_alive() and isinstance(outcome[0], BrokenProcessPool), outcome
        assert pool.run(os.getpid) != first
        assert pool.restarts.count == 1
    finally:
        pool.close()


def test_mastering_workers_that_keep_dying_end_in_a_clear_error() -> None:
    pool = ProcessMastering()
    pool.restarts.limit = 0
    try:
        pool.run(os.getpid)
        for process in list(pool._executor._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not pool._executor._broken and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(BrokenProcessPool, match=r"mastering workers keep dying after 0 restarts \(last: worker "
                                                    r"process \d+ was killed .*\); a lower BOOKCAST_MEMORY_MB"):
            pool.run(os.getpid)
    finally:
        pool.close(now=True)
