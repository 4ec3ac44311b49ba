"""Prefect settings bookcast needs, applied before Prefect is imported.

bookcast runs on Prefect's local ephemeral server with no setup: telemetry off (it would try the
network), console logging quiet (the CLI prints its own progress and summary), run logs still kept by
the server, the API bound to 127.0.0.1. Hugging Face libraries are kept offline. A user's own
settings always win.
"""
from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "CRITICAL",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "CRITICAL",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_API_HOST": "127.0.0.1",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Models load from local folders only; never reach for a hub, and keep load bars off the console.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def tame_malloc() -> None:
    """Keep freed audio buffers from lingering in the process's resident memory (glibc only).

    glibc serves a buffer over its mmap threshold with mmap and returns it on free, but raises the
    threshold after each such free (up to 32 MB): later block-sized numpy buffers then come from
    per-thread heaps that rarely shrink, so a long run's RSS creeps far above what it uses. A
    fixed 1 MiB threshold keeps audio blocks on mmap. Measured on a 5-hour book: main process
    1016 MB → see bench/README.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (fixing it also disables the dynamic rise)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def configure(verbose: bool = False) -> None:
    """Set bookcast's Prefect defaults in the environment (idempotent)."""
    for key, value in DEFAULTS.items():
        if verbose and "CONSOLE" in key:
            continue
        os.environ.setdefault(key, value)
