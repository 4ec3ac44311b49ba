"""The bfloat16 CPU opt-in (`precision = "bfloat16"`): packed bfloat16 weights, the fused attention
of the flat decoding step, the setting's plumbing and its fallback.

bfloat16 is not the reference's arithmetic, so nothing here asks for the float32 goldens' tokens.
What is asked: along the reference's own token path (teacher-forced) the logits stay within a
bfloat16-sized distance of its float32 logits; the packed flat step agrees with the plain modules
in the same precision; every continuous row sees only its own columns; and the setting never
changes a voice's fingerprint (switching precision keeps the clip cache).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest
import torch
from gpt_sovits_fixtures import expected, fixture_path, load_npy
from t2s_small import SAMPLED, plain_modules, small_setup
from test_gpt_sovits_engine import _make_voice

from synth.engines.gpt_sovits.engine import GptSovitsEngine, model_dtype
from synth.engines.gpt_sovits.model import t2s_cpu
from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
from synth.engines.gpt_sovits.model.t2s import Text2SemanticDecoder, decode_naive, load_t2s
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous
from synth.engines.gpt_sovits.model.t2s_decode import _prefix_blocked
from synth.engines.gpt_sovits.voice import SamplingSettings, load_voice, parse_voice, voice_fingerprint
from synth.errors import VoiceError

needs_bf16 = pytest.mark.skipif(not t2s_cpu.bf16_native(),
                                reason="this CPU has no native bfloat16 (AVX-512 BF16 / AMX): the opt-in falls back")
# bfloat16 keeps 8 significant bits: one unit in the last place of a logit in [16, 32) is 0.125.
SAME_PRECISION_ATOL = 0.25  # packed flat step vs plain modules, both bfloat16 (measured 0.125)
REFERENCE_ATOL = 0.5  # bfloat16 vs the reference's float32 logits up to |25| (measured 0.18)


@torch.inference_mode()
def _forced_logits(model: Text2SemanticDecoder, phones, bert, prompt, tokens: list[int]) -> torch.Tensor:
    """Logits of every step when the sampled tokens are `tokens` (teacher forcing): (len + 1, V)."""
    x = model.embed_text(phones[None], bert[None])
    xy = torch.cat([x, model.embed_semantic(prompt[None], 0)], dim=1)
    allowed = ~_prefix_blocked(x.shape[1], prompt.numel(), x.device)[None, None]
    cache = model.new_cache()
    out = [model.run(xy, cache, allowed).float()[0]]
    for i, token in enumerate(tokens):
        step = model.embed_semantic(torch.tensor([[token]]), prompt.numel() + i)
        out.append(model.run(step, cache, None).float()[0])
    return torch.stack(out)


@needs_bf16
def test_bfloat16_step_follows_the_reference_path() -> None:
    """Teacher-forced along the reference's greedy tokens, the bfloat16 flat step (packed weights,
    fused attention) stays within REFERENCE_ATOL of the reference's float32 logits at every step,
    and within one bfloat16 rounding of the plain bfloat16 modules."""
    ckpt = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))
    packed = load_t2s(ckpt, dtype=torch.bfloat16)
    assert packed.cpu_layers is not None and packed.cpu_layers[0].qkv.dtype == torch.bfloat16
    assert packed.ort_step is None  # the ONNX Runtime step is float32 only
    plain = plain_modules(load_t2s(ckpt, dtype=torch.bfloat16))
    phones = torch.from_numpy(load_npy("gpt", "all_phone_ids.npy"))[0]
    bert = torch.from_numpy(load_npy("gpt", "all_bert.npy"))
    prompt = torch.from_numpy(load_npy("gpt", "prompt_semantic.npy"))[0]
    golden = load_npy("gpt", "naive_rp1.0_logits.npy")  # (steps, V), float32 reference
    y_full = np.asarray(expected()["gpt"]["cases"]["naive_rp1.0"]["y_full"]).reshape(-1)
    tokens = y_full[prompt.numel():][: golden.shape[0] - 1].tolist()
    fast = _forced_logits(packed, phones, bert, prompt, tokens)
    slow = _forced_logits(plain, phones, bert, prompt, tokens)
    assert fast.shape == golden.shape
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=0, atol=SAME_PRECISION_ATOL)
    np.testing.assert_allclose(fast.numpy(), golden, rtol=0, atol=REFERENCE_ATOL)
    assert not torch.equal(fast, torch.from_numpy(golden))  # really bfloat16: not the float32 numbers


@needs_bf16
def test_bfloat16_continuous_rows_see_only_their_own_columns() -> None:
    """Continuous decoding in bfloat16 (ragged cache, fused attention with a per-row bias): one slot
    gives decode_naive's tokens exactly; with three slots each row's logits stay within one bfloat16
    rounding of its naive decode for as long as their tokens agree (a row attending to another
    row's or a stale column would be off by whole units)."""
    model, phones, bert, prompt, seeds = small_setup(8, 60)
    model = model.to(torch.bfloat16)
    assert model.pack_for_cpu() > 0 and model.cpu_layers is not None
    alone = [decode_naive(model, p, b, prompt, sampling=SAMPLED, seed=s, max_steps=120, keep_logits=True)
             for p, b, s in zip(phones, bert, seeds)]
    one = decode_continuous(model, phones, bert, prompt, slots=1, sampling=SAMPLED, seed=seeds, max_steps=120)
    assert [r.tokens.tolist() for r in one] == [r.tokens.tolist() for r in alone]
    three = decode_continuous(model, phones, bert, prompt, slots=3, sampling=SAMPLED, seed=seeds, max_steps=120,
                              keep_logits=True)
    compared = 0
    for got, ref in zip(three, alone):
        assert got.logits is not None and ref.logits is not None
        agree = 0
        while agree < min(len(got.tokens), len(ref.tokens)) and got.tokens[agree] == ref.tokens[agree]:
            agree += 1
        steps = min(agree + 1, len(got.logits), len(ref.logits))
        np.testing.assert_allclose(got.logits[:steps].numpy(), ref.logits[:steps].numpy(), rtol=0,
                                   atol=SAME_PRECISION_ATOL)
        compared += steps
    assert compared > 8 * 10  # most rows were compared over many steps, not just their prefill


def test_precision_setting_parses_and_never_enters_the_fingerprint(tmp_path, aux_models) -> None:
    folder = _make_voice(tmp_path / "v", aux_models, extra='\n[settings]\nprecision = "bfloat16"\n')
    voice = load_voice(folder)
    assert voice.settings.precision == "bfloat16"
    auto = replace(voice, settings=replace(voice.settings, precision="auto"))
    assert voice_fingerprint(voice) == voice_fingerprint(auto)  # any precision renders the same voice
    assert voice_fingerprint(auto) != voice_fingerprint(replace(auto, settings=replace(auto.settings, seed=1)))
    bad = _make_voice(tmp_path / "w", aux_models, extra='\n[settings]\nprecision = "int8"\n')
    with pytest.raises(VoiceError, match=r"voice\.toml: settings: precision must be one of auto, float32"):
        parse_voice(bad)
    worse = _make_voice(tmp_path / "x", aux_models, extra="\n[settings]\nprecision = 16\n")
    with pytest.raises(VoiceError, match="settings.precision must be a str"):
        parse_voice(worse)


def test_model_dtype_choices(monkeypatch, caplog) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert model_dtype(cpu, "auto") == torch.float32 and model_dtype(cuda, "auto") == torch.float16
    assert model_dtype(cuda, "bfloat16") == torch.bfloat16 and model_dtype(cpu, "float16") == torch.float16
    assert model_dtype(cpu, "bfloat16", half=False) == torch.float32  # the constructor's override wins
    assert model_dtype(cuda, "float32", half=True) == torch.float16
    # a CPU that would only emulate bfloat16: float32, said in the log
    monkeypatch.setattr("synth.engines.gpt_sovits.engine.bf16_native", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert model_dtype(cpu, "bfloat16") == torch.float32
    assert "AVX-512 BF16 or AMX" in caplog.text


@needs_bf16
def test_engine_speaks_in_bfloat16(tmp_path, aux_models) -> None:
    """The voice's GPT and BERT in bfloat16 from its voice.toml (SoVITS and the prompt in float32):
    finite clips of about the float32 voice's length, reproducible for a seed, the same fingerprint
    and the same prompt."""
    from ingest.segment import segment

    folder = _make_voice(tmp_path / "v", aux_models, extra='\n[settings]\nprecision = "bfloat16"\n')
    engine = GptSovitsEngine(folder, device="cpu")
    assert engine.dtype == torch.bfloat16 and next(engine.bert.model.parameters()).dtype == torch.bfloat16
    assert next(engine.sovits.parameters()).dtype == torch.float32  # the vocoder stays float32
    assert engine.t2s.cpu_layers is not None
    sentences = segment("我们用 PyTorch 训练模型。Speech synthesis is fun.", default="zh")
    clips = engine.synthesize(sentences, seed=3)
    again = engine.synthesize(sentences, seed=3)
    exact = GptSovitsEngine(folder, device="cpu", settings=replace(SamplingSettings(), precision="float32"))
    assert exact.dtype == torch.float32 and exact.fingerprint() == engine.fingerprint()
    # the prompt is computed in float32 either way: the reference's tokens and style are the float32 voice's
    assert torch.equal(engine.prompt.semantic, exact.prompt.semantic)
    assert torch.equal(engine.prompt.ge, exact.prompt.ge)
    reference = exact.synthesize(sentences, seed=3)
    for clip, twin, ref in zip(clips, again, reference):
        assert clip.audio.dtype == np.float32 and np.isfinite(clip.audio).all() and clip.duration > 0.3
        np.testing.assert_array_equal(clip.audio, twin.audio)
        assert 0.5 < clip.duration / ref.duration < 2.0


def test_voice_check_names_the_precision_and_warns_where_it_falls_back(tmp_path, aux_models, monkeypatch) -> None:
    from synth.engines.gpt_sovits.voice import check_voice

    folder = _make_voice(tmp_path / "v", aux_models, extra='\n[settings]\nprecision = "bfloat16"\n')
    monkeypatch.setattr("synth.engines.gpt_sovits.voice_check._bf16_native", lambda: False)
    report = check_voice(folder)
    text = "\n".join(report.lines())
    assert report.ok and "precision bfloat16" in text
    assert "needs a CPU with AVX-512 BF16 or AMX" in text
    monkeypatch.setattr("synth.engines.gpt_sovits.voice_check._bf16_native", lambda: True)
    assert "AVX-512 BF16" not in "\n".join(check_voice(folder).lines())
