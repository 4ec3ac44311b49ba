"""Where the GPT-SoVITS v2 golden fixtures live, and how tests skip when they are absent.

The fixtures are produced by running the reference implementation (see the README beside them) and
sit outside the repository in the shared folder, so every test that needs them goes through these
helpers: one place decides the location and the skip reason.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

# BOOKCAST_SHARED moves it: the GPU machine gets only the repository (bench/gpu_run.sh points it at
# the copy bench/gpu_pack.py carries there).
SHARED_DIR = Path(os.environ.get("BOOKCAST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
FIXTURE_DIR = SHARED_DIR / "fixtures" / "gpt_sovits_v2"


def fixture_dir() -> Path:
    """The fixture folder; skips the calling test when it is not there."""
    if not (FIXTURE_DIR / "expected.json").is_file():
        pytest.skip(f"GPT-SoVITS v2 fixtures not found at {FIXTURE_DIR}")
    return FIXTURE_DIR


def fixture_path(*parts: str) -> Path:
    """A file inside the fixture folder; skips when the folder or the file is missing."""
    path = fixture_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"GPT-SoVITS v2 fixture file missing: {path}")
    return path


@lru_cache(maxsize=None)
def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_json(name: str) -> dict:
    """A JSON file of the fixture folder (expected.json, tiny_ckpt_layout.json, keys_full_v2.json)."""
    return _read_json(fixture_path(name))


def expected() -> dict:
    """The parsed expected.json (configs, token lists, case descriptions)."""
    return load_json("expected.json")


def load_npy(*parts: str) -> np.ndarray:
    """A golden array, e.g. load_npy("gpt", "naive_rp1.35_logits.npy")."""
    return np.load(fixture_path(*parts), allow_pickle=False)
