"""Where chapters are mastered: in worker processes, or in this process.

Mastering is CPU-bound (numpy, scipy, and Python between them). Two chapters mastered on two threads
of one process share one interpreter lock, so the CPU sat a third idle on a 2-core machine; worker
processes (spawned once per run, `export_width` of them: bounded by memory and cores) each master
one chapter at a time in parallel, and the flow's process stays small. `--workers 0` keeps
everything in this process (debugging, tests), bounded by the same width with a semaphore.

Workers ignore Ctrl-C (the parent decides: `close(now=True)` kills them on a stop request) and
import nothing of Prefect.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Protocol

from ingest.errors import raise_if_stopped, stop_requested

from flows.steps.export import export_slots, export_width
from synth.pool import RestartBudget, guard, shutdown


class MasteringPool(Protocol):
    width: int

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call `fn(*args)` where chapters are mastered; blocks until it returns (or raises)."""
        ...

    def close(self, now: bool = False) -> None:
        ...


class InlineMastering:
    """In this process, `width` chapters at a time."""

    def __init__(self) -> None:
        self.width = export_width()

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        with export_slots():
            return fn(*args)

    def close(self, now: bool = False) -> None:
        return None


def _init_worker() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see the module docstring
    from flows.steps.memory import WORKER_MMAP_THRESHOLD, WORKER_TRIM_THRESHOLD, tame_malloc

    tame_malloc(WORKER_MMAP_THRESHOLD, WORKER_TRIM_THRESHOLD)


class ProcessMastering:
    """`width` spawned worker processes, for one run.

    A worker that dies (the OOM killer, a kill) breaks the executor: the chapters it held fail
    with BrokenProcessPool (the export task's retry covers them), and the next chapter submitted
    gets a fresh set of workers, a bounded number of times."""

    def __init__(self) -> None:
        self.width = export_width()
        self._lock = threading.Lock()
        self.restarts = RestartBudget("mastering", "a lower BOOKCAST_MEMORY_MB masters fewer chapters at once")
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(self.width, mp_context=mp.get_context("spawn"), initializer=_init_worker)
        return guard(executor)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        with self._lock:
            try:
                return self._executor.submit(fn, *args)
            except BrokenProcessPool:
                if stop_requested.is_set():
                    raise
                self._executor = self.restarts.replace(self._executor, self._start)  # or WorkersDied
                return self._executor.submit(fn, *args)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self._submit(fn, *args)
        while True:  # wait, but answer a stop request at once (the worker cannot see it)
            try:
                return future.result(timeout=0.25)
            except FutureTimeout:
                if stop_requested.is_set():
                    self.close(now=True)
                    raise_if_stopped()

    def close(self, now: bool = False) -> None:
        shutdown(self._executor, now)  # now: a worker may be mid-chapter for a minute


def make_mastering_pool(in_process: bool) -> MasteringPool:
    return InlineMastering() if in_process or (os.cpu_count() or 1) == 1 else ProcessMastering()
