"""Shared fixtures: one Prefect test harness per session (it costs ~11 s to start)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers (epub_factory, ...)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (SQLite) for in-process flow runs; started once per session."""
    from flows import runtime

    runtime.configure()
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def aux_models(tmp_path_factory):
    """(bert_dir, hubert_dir): tiny random models in Hugging Face layout, built once per session
    for every module that builds a voice (gpt_sovits_aux.py)."""
    from gpt_sovits_aux import build_aux_models

    return build_aux_models(tmp_path_factory.mktemp("pretrained"))
