"""Local Hugging Face model folders (BERT, HuBERT): the checks both share before any weight loads."""
from __future__ import annotations

import json
from pathlib import Path

from synth.errors import VoiceError


def read_config(folder: Path, what: str, expected_name: str, hidden_size: int) -> tuple[dict, Path]:
    """(config.json contents, its path) of a local model folder whose hidden size must be
    `hidden_size`. Raises VoiceError naming the folder or file and what is wrong with it."""
    if not folder.is_dir():
        raise VoiceError(f"{what} folder not found (expected {expected_name} in Hugging Face layout)", folder)
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise VoiceError(f"{what} folder has no config.json", folder) from exc
    except (OSError, ValueError) as exc:
        raise VoiceError(f"unreadable {what} config ({exc})", cfg_path) from exc
    if cfg.get("hidden_size") != hidden_size:
        raise VoiceError(f"{what} hidden size is {cfg.get('hidden_size')}, GPT-SoVITS v2 needs {hidden_size} "
                         f"({expected_name})", cfg_path)
    return cfg, cfg_path
