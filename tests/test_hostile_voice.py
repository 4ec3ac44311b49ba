"""Hostile voice files: weight paths that are devices or pipes, and checkpoint configs that would
divide by zero, build negative or absurd layers. Each is refused with a message naming the file
and the value, before any large allocation (an absurd model is only ever built on the meta device).
"""
from __future__ import annotations

import copy
import os
import tracemalloc
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gpt_sovits_fixtures import fixture_path  # noqa: E402

from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint, load_sovits_checkpoint  # noqa: E402
from synth.engines.gpt_sovits.model.sovits.model import SynthesizerTrnV2  # noqa: E402
from synth.engines.gpt_sovits.model.t2s_model import load_t2s  # noqa: E402
from synth.errors import VoiceError  # noqa: E402

MB = 1 << 20


def _refused(fn, path: Path, *words: str, limit_mb: float = 200) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(VoiceError) as info:
            fn(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(info.value)
    assert str(path) in text and peak < limit_mb * MB, (text, peak)
    for word in words:
        assert word in text, f"{word!r} not in: {text}"


@pytest.mark.parametrize("loader", [load_gpt_checkpoint, load_sovits_checkpoint], ids=["gpt", "sovits"])
@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "folder"])
def test_weight_path_that_is_not_a_file(tmp_path: Path, loader, target: str) -> None:
    path = tmp_path / "w.ckpt"
    if target == "fifo":
        os.mkfifo(path)  # opening it would block for ever
    elif target == "folder":
        path.mkdir()
    else:
        path.symlink_to(target)
    _refused(loader, path, "not a regular file", limit_mb=8)


def _gpt_with(tmp_path: Path, **model) -> Path:
    ckpt = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))
    config = copy.deepcopy(ckpt.config)
    config["model"].update(model)
    path = tmp_path / "bad.ckpt"
    torch.save({"weight": {f"model.{k}": v for k, v in ckpt.weights.items()}, "config": config, "info": "x"}, path)
    return path


@pytest.mark.parametrize("change,words", [
    ({"head": 0}, ["head=0", "outside"]),
    ({"hidden_dim": -64, "embedding_dim": -64}, ["=-64", "outside"]),
    ({"n_layer": 10**9}, ["n_layer=1000000000", "outside"]),
    ({"head": 3}, ["not divisible"]),
    ({"hidden_dim": 16384, "embedding_dim": 16384, "head": 16, "n_layer": 24}, ["shape mismatch"]),
    ({"vocab_size": 1 << 20, "EOS": (1 << 20) - 1}, ["shape mismatch"]),
], ids=["zero-heads", "negative-width", "billion-layers", "heads-not-dividing", "absurd-width", "huge-vocab"])
def test_gpt_config_refused_before_allocating(tmp_path: Path, change: dict, words: list[str]) -> None:
    path = _gpt_with(tmp_path, **change)
    # absurd-width would need ~300 GB if it were built for real; on the meta device it is free
    _refused(lambda p: load_t2s(load_gpt_checkpoint(p)), path, *words)


def _sovits_with(tmp_path: Path, **model) -> Path:
    ckpt = load_sovits_checkpoint(fixture_path("tiny_e1_s1.pth"))
    config = copy.deepcopy(ckpt.config)
    config["model"].update(model)
    path = tmp_path / "bad.pth"
    torch.save({"weight": dict(ckpt.weights), "config": config, "info": "x"}, path)
    return path


@pytest.mark.parametrize("change,words", [
    ({"n_heads": 0}, ["n_heads=0", "outside"]),
    ({"filter_channels": -5}, ["filter_channels=-5", "outside"]),
    ({"upsample_initial_channel": 16384}, ["shape mismatch"]),
    ({"n_layers": 100}, ["missing"]),
    ({"upsample_rates": [], "upsample_kernel_sizes": []}, ["non-empty"]),
    ({"resblock_dilation_sizes": [[1, 3, 0], [1, 3, 5]]}, ["resblock_dilation_sizes=0"]),
], ids=["zero-heads", "negative-filter", "absurd-channels", "extra-layers", "no-upsampling", "zero-dilation"])
def test_sovits_config_refused_before_allocating(tmp_path: Path, change: dict, words: list[str]) -> None:
    _refused(SynthesizerTrnV2.from_checkpoint, _sovits_with(tmp_path, **change), *words)


def test_the_unchanged_fixtures_still_load(tmp_path: Path) -> None:
    load_t2s(load_gpt_checkpoint(_gpt_with(tmp_path)))
    SynthesizerTrnV2.from_checkpoint(_sovits_with(tmp_path))
