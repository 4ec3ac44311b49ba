"""Safe, strict checkpoint loading for GPT-SoVITS v2 (against the shared tiny fixtures)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gpt_sovits_fixtures import expected, fixture_path

from ingest.errors import UnsupportedError
from synth.errors import VoiceError
from synth.engines.gpt_sovits.model.checkpoint import (
    load_gpt_checkpoint,
    load_sovits_checkpoint,
    load_state_strict,
    sovits_file_version,
)


def _with_header(tmp_path: Path, head: bytes) -> Path:
    data = fixture_path("tiny_e1_s1.pth").read_bytes()
    out = tmp_path / f"tagged_{head.decode()}.pth"
    out.write_bytes(head + data[2:])
    return out


def test_gpt_checkpoint_loads_with_prefix_stripped() -> None:
    ckpt = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))
    meta = expected()["gpt_ckpt"]
    assert ckpt.info == meta["info"] == "GPT-e1"
    assert ckpt.config == meta["config"]
    assert ckpt.config["model"]["hidden_dim"] == 64
    assert len(ckpt.weights) == 31
    assert "ar_predict_layer.weight" in ckpt.weights
    assert not any(k.startswith("model.") for k in ckpt.weights)
    assert all(t.dtype == torch.float16 for t in ckpt.weights.values())


def test_sovits_checkpoint_loads_config_as_plain_dicts() -> None:
    ckpt = load_sovits_checkpoint(fixture_path("tiny_e1_s1.pth"))
    assert ckpt.version == "v2"
    assert ckpt.info == "1epoch_1iteration"
    assert len(ckpt.weights) == 361
    assert not any("enc_q" in k for k in ckpt.weights)
    assert type(ckpt.config) is dict and type(ckpt.config["model"]) is dict
    assert ckpt.config == expected()["sovits_pth"]["config"]
    assert ckpt.config["data"]["hop_length"] == 640


def test_plain_zip_version_comes_from_phone_embedding() -> None:
    assert sovits_file_version(fixture_path("tiny_e1_s1.pth")) == "v2"


def test_header_01_loads_like_plain_zip(tmp_path: Path) -> None:
    tagged = _with_header(tmp_path, b"01")
    assert sovits_file_version(tagged) == "v2"
    plain = load_sovits_checkpoint(fixture_path("tiny_e1_s1.pth"))
    ckpt = load_sovits_checkpoint(tagged)
    assert ckpt.weights.keys() == plain.weights.keys()
    assert all(torch.equal(ckpt.weights[k], plain.weights[k]) for k in plain.weights)


@pytest.mark.parametrize(
    ("head", "name"),
    [(b"05", "v2Pro"), (b"06", "v2ProPlus"), (b"00", "v1"), (b"02", "v3"), (b"04", "v4")],
)
def test_other_versions_are_unsupported(tmp_path: Path, head: bytes, name: str) -> None:
    tagged = _with_header(tmp_path, head)
    assert sovits_file_version(tagged).startswith(name)
    with pytest.raises(UnsupportedError, match=name) as info:
        load_sovits_checkpoint(tagged)
    assert str(tagged) in str(info.value)


def test_plain_zip_v1_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "v1.pth"
    weights = {"enc_p.text_embedding.weight": torch.zeros(322, 4, dtype=torch.float16)}
    torch.save({"weight": weights, "config": {"model": {}}, "info": "x"}, path)
    assert sovits_file_version(path) == "v1"
    with pytest.raises(UnsupportedError, match="v1"):
        load_sovits_checkpoint(path)


class _CreatesMarker:
    """Pickles as a call to open(marker, 'w'): loading it unsafely would create the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("loader", [load_gpt_checkpoint, load_sovits_checkpoint])
def test_pickle_that_runs_code_is_refused(tmp_path: Path, loader) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    payload = {
        "weight": {"model.x": torch.zeros(1)},
        "config": {"model": {}, "hook": _CreatesMarker(marker)},
        "info": "x",
    }
    torch.save(payload, evil)
    assert evil.read_bytes()[:2] == b"PK" and not marker.exists()
    with pytest.raises(VoiceError, match="allow-list") as info:
        loader(evil)
    assert str(evil) in str(info.value)
    assert not marker.exists()


def test_truncated_file_is_a_voice_error(tmp_path: Path) -> None:
    data = fixture_path("tiny-e1.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VoiceError) as info:
        load_gpt_checkpoint(cut)
    assert str(cut) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello world, not a zip", b"01garbage-after-header"])
def test_not_a_torch_archive_is_a_voice_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(VoiceError, match="bad.pth"):
        load_sovits_checkpoint(path)
    with pytest.raises(VoiceError, match="bad.pth"):
        load_gpt_checkpoint(path)


def test_missing_file_is_a_voice_error(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="nope.ckpt"):
        load_gpt_checkpoint(tmp_path / "nope.ckpt")


def test_missing_entries_are_voice_errors(tmp_path: Path) -> None:
    path = tmp_path / "noconfig.ckpt"
    torch.save({"weight": {"model.a": torch.zeros(2)}}, path)
    with pytest.raises(VoiceError, match="config"):
        load_gpt_checkpoint(path)
    torch.save({"weight": {"a": torch.zeros(2)}, "config": {"model": {}}}, path)
    with pytest.raises(VoiceError, match="prefix"):
        load_gpt_checkpoint(path)


def _small() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))


def test_load_state_strict_maps_casts_and_copies() -> None:
    module = _small()
    weights = {
        "lin.w": torch.arange(6, dtype=torch.float16).reshape(2, 3),
        "lin.b": torch.ones(2, dtype=torch.float16),
        "ln.w": torch.full((2,), 2.0, dtype=torch.float16),
        "ln.b": torch.zeros(2, dtype=torch.float16),
        "train_only": torch.zeros(1),
    }
    names = {"lin.w": "0.weight", "lin.b": "0.bias", "ln.w": "1.weight", "ln.b": "1.bias"}
    load_state_strict(module, weights, key_map=names.get)
    assert module[0].weight.dtype == torch.float32
    assert torch.equal(module[0].weight, torch.arange(6.0).reshape(2, 3))
    assert torch.equal(module[1].weight, torch.full((2,), 2.0))


def test_load_state_strict_names_every_problem(tmp_path: Path) -> None:
    module = _small()
    weights = {
        "0.weight": torch.zeros(2, 4),  # wrong shape
        "0.bias": torch.zeros(2),
        "1.weight": torch.zeros(2),
        "extra.thing": torch.zeros(1),
    }
    with pytest.raises(VoiceError) as info:
        load_state_strict(module, weights, source=tmp_path / "w.pth")
    msg = str(info.value)
    assert "missing 1: 1.bias" in msg
    assert "unexpected 1: extra.thing" in msg
    assert "0.weight (2, 4) vs (2, 3)" in msg
    assert "w.pth" in msg
    before = module[1].bias.detach().clone()
    del weights["extra.thing"]
    weights["0.weight"] = torch.zeros(2, 3)
    load_state_strict(module, weights, ignore=lambda k: k == "1.bias")
    assert torch.equal(module[1].bias, before)
    assert torch.equal(module[0].weight, torch.zeros(2, 3))
