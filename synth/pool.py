"""Where synthesis batches run: in this process, in local worker processes, or on a Dask cluster.

Local workers are long-lived spawned processes, one per GPU (CUDA_VISIBLE_DEVICES pinned before any
CUDA initialisation, so `cuda:0` is the worker's own card) or N CPU workers when there is no GPU; each
loads a voice once and keeps it. Beyond one machine, batches go to an existing Dask scheduler by
address — Dask does the distribution, bookcast only submits. No pool imports Prefect.
"""
from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import weakref
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_any
from typing import Callable, Protocol, Sequence

from ingest.errors import Interrupted, stop_requested
from ingest.segment import Sentence
from synth.errors import WorkersDied
from synth.heap import bound_onednn_cache, release_free_heap
from synth.jobs import BatchResult, EngineSpec, Measure, engine_fingerprint, run_batch

log = logging.getLogger(__name__)


class Pool(Protocol):
    description: str

    def submit(self, spec: EngineSpec, keys: Sequence[str], sentences: Sequence[Sentence], seed: int,
               measure: Measure | None = None) -> "Future[BatchResult]": ...

    def fingerprint(self, spec: EngineSpec) -> str: ...

    def close(self, now: bool = False) -> None:
        """Release the workers; `now` stops them mid-batch (a stop request), else lets them finish."""
        ...


@dataclass(frozen=True)
class PoolConfig:
    workers: int | None = None  # None: one per GPU, else one per CPU core; 0: in this process
    devices: tuple[str, ...] = ()  # GPU ids to use, e.g. ("0", "1"); () = auto-detect
    dask_address: str | None = None  # tcp://host:8786 → run batches on that Dask cluster


def detect_gpus() -> list[str]:
    """Visible CUDA device ids, without initialising CUDA in this process when torch is absent."""
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def make_pool(config: PoolConfig, use_gpus: bool = True) -> Pool:
    """The pool `config` asks for; `use_gpus=False` (a CPU engine such as espeak) ignores GPUs."""
    if config.dask_address:
        return DaskPool(config.dask_address)
    gpus = [] if not use_gpus else list(config.devices) or ([] if config.workers == 0 else detect_gpus())
    if config.workers == 0:
        return InlinePool()
    if gpus:
        return ProcessPool(len(gpus), gpus)
    return ProcessPool(config.workers or os.cpu_count() or 1, [])


class InlinePool:
    """Runs batches in the calling thread; for tiny jobs and debugging."""

    description = "in-process"

    def submit(self, spec, keys, sentences, seed, measure=None) -> Future:
        future: Future = Future()
        try:
            future.set_result(run_batch(spec, keys, sentences, seed, measure))
        except Exception as exc:  # delivered through the future, like the other pools
            future.set_exception(exc)
        return future

    def fingerprint(self, spec: EngineSpec) -> str:
        return engine_fingerprint(spec)

    def close(self, now: bool = False) -> None:
        return None


def _init_worker(devices: "mp.Queue[str]", threads: int) -> None:
    """Runs first in each worker: claim a GPU (or none) before anything can touch CUDA, and size
    the math libraries' thread pools. torch is not imported here: it reads these variables when
    an engine that needs it first imports it, and an espeak worker never pays for it (~250 MB)."""
    # A terminal's Ctrl-C reaches the whole process group; the parent decides when workers stop
    # (it kills them on a stop request), so they must not die mid-batch with a traceback of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    device = devices.get()
    os.environ["CUDA_VISIBLE_DEVICES"] = device  # "" hides every GPU from a CPU worker
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    bound_onednn_cache()  # before any primitive exists (synth/heap.py)


def _worker_batch(spec: EngineSpec, keys: Sequence[str], sentences: Sequence[Sentence], seed: int,
                  measure: Measure | None = None) -> BatchResult:
    """`run_batch` in a worker, then the heap's free pages handed back to the system."""
    try:
        return run_batch(spec, keys, sentences, seed, measure)
    finally:
        release_free_heap()


class ProcessPool:
    """N spawned worker processes that live as long as the pool (one flow run).

    A worker that dies (killed, out of memory, a crashing driver) breaks a ProcessPoolExecutor for
    good; the pool then starts a fresh set of workers and resubmits the affected batches, a bounded
    number of times, so one lost process costs a reload, not the run.
    """

    def __init__(self, workers: int, gpus: Sequence[str]) -> None:
        self.workers, self._gpus = workers, list(gpus)
        self._lock = threading.Lock()
        self.restarts = RestartBudget("synthesis", "fewer --workers need less memory")
        self._executor = self._start()
        self.description = f"{workers} GPU worker(s) {','.join(gpus)}" if gpus else f"{workers} CPU worker(s)"

    def _start(self) -> ProcessPoolExecutor:
        ctx = mp.get_context("spawn")
        queue: mp.Queue = ctx.Queue()
        for i in range(self.workers):
            queue.put(self._gpus[i] if self._gpus else "")
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        return guard(ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                         initargs=(queue, threads)))

    def _restart(self, broken: ProcessPoolExecutor) -> Exception | None:
        """Replace `broken` (once, whoever notices first); the error for its batches when it
        cannot be replaced (a stop request killed the workers, or the restarts are spent)."""
        with self._lock:
            if self._executor is not broken:
                return None
            if stop_requested.is_set():  # the stop killed the workers: not a death to explain
                return Interrupted("stopped on request; run the same command again to resume")
            try:
                self._executor = self.restarts.replace(broken, self._start)
            except WorkersDied as exc:
                return exc
            return None

    def _submit(self, fn, *args) -> Future:
        """`fn(*args)` on a worker; the future returned survives worker restarts.

        Built from methods and partials, not nested closures: closures that name each other form a
        reference cycle holding the future and so its result (a batch's audio) until the cyclic
        GC's rare full collection — on a 20-hour book the main process kept hundreds of clips
        (tracemalloc: 32 MB in 90 s, rising with the book)."""
        result: Future = Future()
        self._attempt(result, fn, args)
        return result

    def _attempt(self, result: Future, fn, args: tuple) -> None:
        executor = self._executor
        try:
            inner = executor.submit(fn, *args)
        except BrokenProcessPool:
            self._retry(result, fn, args, executor)
            return
        inner.add_done_callback(functools.partial(self._settle, result, fn, args, executor))

    def _retry(self, result: Future, fn, args: tuple, executor: ProcessPoolExecutor) -> None:
        error = self._restart(executor)
        if error is None:
            threading.Thread(target=self._attempt, args=(result, fn, args), daemon=True).start()
        else:
            result.set_exception(error)

    def _settle(self, result: Future, fn, args: tuple, executor: ProcessPoolExecutor, inner: Future) -> None:
        if inner.cancelled():  # the pool is closing (a stop request): nothing will come
            result.cancel()
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            self._retry(result, fn, args, executor)
        elif exc is not None:
            result.set_exception(exc)
        else:
            result.set_result(inner.result())

    def submit(self, spec, keys, sentences, seed, measure=None) -> Future:
        return self._submit(_worker_batch, spec, tuple(keys), tuple(sentences), seed, measure)

    def fingerprint(self, spec: EngineSpec) -> str:
        """The engine's fingerprint; asked of every worker at once, so all of them start and load
        the voice in parallel now rather than one by one during the first batches."""
        answers = [self._submit(engine_fingerprint, spec) for _ in range(self.workers)]
        return [a.result() for a in answers][0]

    def close(self, now: bool = False) -> None:
        shutdown(self._executor, now)  # now: workers may be mid-batch for seconds (a GPT-SoVITS batch)


def shutdown(executor: ProcessPoolExecutor, now: bool = False) -> None:
    """Shut a process pool down: after the work in hand, or `now` (a stop request) by killing its
    processes, which only ever write atomically, so nothing half-written is left."""
    if not now:
        executor.shutdown(wait=True, cancel_futures=True)
        return
    processes = list((getattr(executor, "_processes", None) or {}).values())
    results = getattr(executor, "_result_queue", None)  # shutdown() forgets it
    executor.shutdown(wait=False, cancel_futures=True)
    _unblock_reader(processes, results)


def _unblock_reader(processes: Sequence, results) -> None:
    """Kill `processes` and close this process's end of the result pipe.

    A worker killed while sending a result leaves half a message in the pipe, and the pool's
    reader thread waits for the rest forever: it never looks at the workers again, so the pool is
    never marked broken, and the interpreter's exit waits for that thread too (seen: a stopped run
    alive minutes later; one killed worker hanging `bookcast make`). Only EOF ends the wait, and
    EOF needs every write end closed: the live workers' and this process's own."""
    for process in processes:
        process.kill()
    for process in processes:
        process.join(5)
    writer = getattr(results, "_writer", None)
    with _closing:  # a stop and the guard may both get here: closing one fd twice could close a reused one
        if writer is not None and not writer.closed:
            try:
                writer.close()
            except OSError:
                pass


_closing = threading.Lock()


def guard(executor: ProcessPoolExecutor) -> ProcessPoolExecutor:
    """`executor`, watched by a thread that turns a dead worker into a broken pool (`_guard`)."""
    threading.Thread(target=_guard, args=(weakref.ref(executor),), name="bookcast-pool-guard", daemon=True).start()
    return executor


class RestartBudget:
    """A pool's worker restarts (the synthesis and the mastering pool each have one): how many
    are spent, and how the last worker died, for the warning on each restart and the one line a
    user reads when they run out."""

    def __init__(self, what: str, memory_hint: str, limit: int = 3) -> None:
        self.what, self.memory_hint, self.limit = what, memory_hint, limit
        self.count = 0
        self.last_death: str | None = None

    def replace(self, broken: ProcessPoolExecutor, start: Callable[[], ProcessPoolExecutor]) -> ProcessPoolExecutor:
        """Shut `broken` down and return `start()`; WorkersDied when `limit` restarts are spent."""
        self.last_death = death_report(broken) or self.last_death
        if self.count >= self.limit:
            last = f" (last: {self.last_death})" if self.last_death else ""
            hint = f"; {self.memory_hint}" if self.last_death and "out-of-memory" in self.last_death else ""
            raise WorkersDied(f"{self.what} workers keep dying after {self.limit} restarts{last}{hint}")
        self.count += 1
        log.warning("restarting the %s workers (%d/%d): %s", self.what, self.count, self.limit,
                    self.last_death or "one died")
        broken.shutdown(wait=False, cancel_futures=True)
        return start()


def death_report(executor: ProcessPoolExecutor) -> str | None:
    """How a broken executor's worker died, from the exit codes of those that have ended; None
    when none has. The executor's own thread SIGTERMs the others once it sees a death, so another
    cause comes first."""
    ended = [p for p in list((getattr(executor, "_processes", None) or {}).values()) if wait_for_any([p.sentinel], 0)]
    dead = [(p.pid, code) for p in ended if (code := _exit_code(p)) != 0]
    if not dead:
        return None
    dead.sort(key=lambda pid_code: pid_code[1] == -signal.SIGTERM)
    return describe_exit(*dead[0])


def describe_exit(pid: int, code: int | None) -> str:
    """How a worker process ended, in words; SIGKILL is what Linux's out-of-memory killer sends."""
    if code is None:
        return f"worker process {pid} ended"
    if code == -9:
        return f"worker process {pid} was killed by SIGKILL, often the out-of-memory killer"
    return f"worker process {pid} got signal {-code}" if code < 0 else f"worker process {pid} exited ({code})"


def _exit_code(process: mp.process.BaseProcess, wait_s: float = 0.5) -> int | None:
    """An ended process's exit code. The executor's own thread may be reaping it at this instant
    (then this thread's waitpid finds nothing); its answer lands on the same object a moment later."""
    deadline = time.monotonic() + wait_s
    while (code := process.exitcode) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return code


def _guard(executor_ref: "weakref.ref[ProcessPoolExecutor]", poll_s: float = 0.25) -> None:
    """Watch an executor's workers; when one dies (exit code ≠ 0), stop its siblings and unblock
    the reader, so the executor breaks (and `ProcessPool` restarts it) instead of waiting forever.

    The siblings' batches are lost either way: a broken executor fails every pending future, and
    `ProcessPool` resubmits them. Workers start lazily, so the set is looked at again every poll.
    The thread ends after acting once, or with the executor's shutdown or collection (it holds
    only a weak reference, so an executor nobody shut down is still wound down when dropped)."""
    executor = executor_ref()
    results = getattr(executor, "_result_queue", None)
    ended: set[int] = set()
    while executor is not None and (processes := getattr(executor, "_processes", None)) is not None:
        del executor
        running = {p.sentinel: p for p in list(processes.values()) if p.pid not in ended}
        if not running:
            time.sleep(poll_s)
        ready = [running[s] for s in wait_for_any(list(running), timeout=poll_s)] if running else []
        for process in ready:
            ended.add(process.pid)
            # None: still unknown after a wait (reaped elsewhere). A worker never ends while its
            # pool runs, so only a shutdown makes an ending (code 0, or unknown) normal.
            code = _exit_code(process)
            # Stopping: a stop request's kills, or a shutdown by its owner — not a shutdown because a
            # death broke it (`ProcessPool` may even have dropped it by now).
            owner = executor_ref()
            stopping = stop_requested.is_set() or (owner is not None and getattr(owner, "_shutdown_thread", True)
                                                   and not getattr(owner, "_broken", False))
            del owner
            if code != 0 and not (stopping and code is None):
                if not stopping:  # the pool reports the death when it restarts (`death_report`)
                    log.debug("%s; stopping the others", describe_exit(process.pid, code))
                _unblock_reader([p for p in list(processes.values()) if p is not process], results)
                return
        executor = executor_ref()


def _bridge(remote) -> Future:
    """A concurrent.futures.Future that settles with a Dask future, so callers handle every pool's
    futures alike (as_completed, result, exception)."""
    local: Future = Future()

    def settle(done) -> None:
        try:
            local.set_result(done.result())
        except Exception as exc:  # the worker's failure travels to the caller unchanged
            local.set_exception(exc)

    remote.add_done_callback(settle)
    return local


class DaskPool:
    """Batches on a Dask cluster; workers advertising a `GPU` resource get GPU batches."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        self._client = Client(address, timeout="30s")
        info = self._client.scheduler_info()
        workers = info.get("workers", {})
        self._gpu = any("GPU" in (w.get("resources") or {}) for w in workers.values())
        self.description = f"Dask {address} ({len(workers)} workers{', GPU' if self._gpu else ''})"

    def submit(self, spec, keys, sentences, seed, measure=None) -> Future:
        resources = {"GPU": 1} if self._gpu else None
        remote = self._client.submit(run_batch, spec, tuple(keys), tuple(sentences), seed, measure, pure=False,
                                     resources=resources)
        return _bridge(remote)

    def fingerprint(self, spec: EngineSpec) -> str:
        return self._client.submit(engine_fingerprint, spec, pure=False).result()

    def close(self, now: bool = False) -> None:
        self._client.close()
