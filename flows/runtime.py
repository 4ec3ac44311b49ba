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


def configure(verbose: bool = False) -> None:
    """Set bookcast's Prefect defaults in the environment (idempotent)."""
    for key, value in DEFAULTS.items():
        if verbose and "CONSOLE" in key:
            continue
        os.environ.setdefault(key, value)
