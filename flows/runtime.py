"""Prefect settings bookcast needs, applied before Prefect is imported.

bookcast runs on Prefect's local ephemeral server with no setup: telemetry off (it would try the
network), console logging quiet (the CLI prints its own progress and summary), run logs still kept by
the server, the API bound to 127.0.0.1. Hugging Face libraries are kept offline. A user's own
settings always win.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "CRITICAL",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # Models load from local folders only; never reach for a hub, and keep load bars off the console.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def configure(verbose: bool = False) -> None:
    """Set bookcast's Prefect defaults in the environment (idempotent)."""
    for key, value in DEFAULTS.items():
        if verbose and "CONSOLE" in key:
            continue
        os.environ.setdefault(key, value)


# ---- processes: the reaper, the local Prefect server ---------------------------------------------

_reaper_fd: int | None = None


def start_reaper() -> None:
    """Start the reaper (flows/reaper.py) watching this process; idempotent. Its pipe's write end
    stays open until this process exits, however it exits."""
    global _reaper_fd
    if _reaper_fd is not None:
        return
    import subprocess
    import sys

    read_fd, write_fd = os.pipe()  # not inherited by the processes we start later
    try:
        subprocess.Popen([sys.executable, "-m", "flows.reaper", str(os.getpid())], stdin=read_fd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        os.close(write_fd)
        return
    finally:
        os.close(read_fd)
    _reaper_fd = write_fd


class LocalServer:
    """Prefect's API for one bookcast command, started by bookcast itself when PREFECT_API_URL is
    unset (what Prefect calls its ephemeral server, under our control): in its own session, so a
    Ctrl-C in the terminal reaches bookcast and not the server mid-run; stopped by `stop`, and by
    the reaper if bookcast is killed. Start it before importing Prefect: PREFECT_API_URL is set
    for this process, so Prefect never starts a server of its own."""

    def __init__(self) -> None:
        self.process = None
        self.url = ""

    def start(self, timeout_s: float) -> None:
        """Raises BookcastError (one line saying what to do) when the server does not answer."""
        import importlib.util
        import socket
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        from ingest.errors import BookcastError

        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            raise BookcastError("Prefect is not installed (pip install -e .)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
        home.mkdir(parents=True, exist_ok=True)
        log_file = open(home / "bookcast-server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True)
        log_file.close()
        self.url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:  # a local probe
                    if reply.status == 200:
                        os.environ["PREFECT_API_URL"] = self.url
                        return
            except OSError:
                time.sleep(0.2)
        code = self.process.poll()
        self.stop()
        why = f"exited with status {code}" if code is not None else f"did not answer within {timeout_s:.0f} s"
        raise BookcastError(
            f"the local Prefect server {why} (log: {home / 'bookcast-server.log'}); run the command again, "
            f"or start one with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api")

    def stop(self) -> None:
        import subprocess

        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


# ---- stopping on Ctrl-C / SIGTERM ----------------------------------------------------------------

_FORCE_AFTER_S = 20.0  # a stop that has not finished by then ends the process outright


@contextlib.contextmanager
def stop_on_signals(message: str = "bookcast: stopping; run the same command again to resume") -> Iterator[None]:
    """While the body runs, the first Ctrl-C or SIGTERM prints `message` (one line) and asks
    everything to stop (`ingest.errors.stop_requested`): running steps end at their next block,
    nothing new starts, and the body returns or raises Interrupted within moments. A second
    signal, or a stop still going after 20 s, kills our child processes and exits at once (130).
    Only in the main thread; elsewhere the body just runs."""
    import signal
    import sys
    import threading

    from ingest.errors import stop_requested

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_requested.clear()

    def force() -> None:
        _kill_children()
        os._exit(130)

    def handler(signum, frame) -> None:  # noqa: ARG001 — the signal module's signature
        if stop_requested.is_set():
            force()
        stop_requested.set()
        print(message, file=sys.stderr, flush=True)
        timer = threading.Timer(_FORCE_AFTER_S, force)
        timer.daemon = True
        timer.start()

    global _stop_handler
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _stop_handler = handler
    try:
        yield
    finally:
        _stop_handler = None
        for s, h in previous.items():
            signal.signal(s, h)


_stop_handler = None  # the active `stop_on_signals` handler


def reclaim_sigterm() -> None:
    """Put our SIGTERM handler back inside a flow run: Prefect's flow engine installs its own
    (it raises TerminationSignal in whatever the main thread is doing, and the run neither says
    one line nor stops its workers cleanly). Prefect restores ours when the flow run ends. A no-op
    outside `stop_on_signals` or off the main thread."""
    import signal
    import threading

    if _stop_handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_handler)


def _kill_children() -> None:
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
    except ImportError:
        pass


# ---- console logging -----------------------------------------------------------------------------

_QUIET = ("prefect", "httpx", "httpcore", "uvicorn", "distributed", "asyncio", "websockets", "alembic",
          "sqlalchemy", "aiosqlite", "docket")


class _OneLine(logging.Filter):
    """Non-verbose console: nothing from Prefect and the libraries under it (their task-failure
    tracebacks stay in the manifest and the Prefect server's logs), and our own warnings as one
    line each, without tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in _QUIET:
            return False
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_handler: logging.Handler | None = None


def console_logging(verbose: bool) -> None:
    """The CLI's one console handler: WARNING, one line each, Prefect quiet; or with -v, INFO from
    everyone with tracebacks."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = logging.StreamHandler()
    _handler.setLevel(logging.INFO if verbose else logging.WARNING)
    _handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        _handler.addFilter(_OneLine())
    root.addHandler(_handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def user_api_server() -> bool:
    """True when the user points bookcast at a Prefect server of their own (PREFECT_API_URL set
    before bookcast started one): a server Dask workers on other machines can report to."""
    return bool(os.environ.get("PREFECT_API_URL")) and _server is None


_server: LocalServer | None = None


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """A Prefect API for the body: the one already configured (PREFECT_API_URL, or a test
    harness's), else a local server started now and stopped after the body."""
    import sys

    global _server
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():
            yield
            return
    elif os.environ.get("PREFECT_API_URL"):
        yield
        return
    server = LocalServer()
    try:
        timeout = float(os.environ.get("BOOKCAST_SERVER_TIMEOUT_S", "180"))
    except ValueError:
        timeout = 180.0
    server.start(timeout)
    _server = server
    try:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: server.url}):
            yield
    finally:
        _drain_prefect()
        os.environ.pop("PREFECT_API_URL", None)
        _server = None
        server.stop()


def _drain_prefect() -> None:
    """Send Prefect's buffered run logs and events to the server before it stops (otherwise its
    workers retry a vanished server at exit for a minute, then print an error)."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
    except Exception as exc:  # noqa: BLE001 — draining is best effort; the run itself is done
        logging.getLogger(__name__).debug("could not drain Prefect's workers: %s", exc)
