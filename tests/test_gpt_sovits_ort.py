"""The ONNX Runtime decoding step of one row (t2s_ort.py): the PyTorch step's numbers, the same
tokens from every decoder, the cache left as PyTorch's step leaves it, and the fallbacks."""
from __future__ import annotations

import pytest
import torch
from t2s_small import SAMPLED, SMALL, small_setup

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the gpt-sovits extra brings it)")
pytest.importorskip("onnx", reason="onnx is not installed (the gpt-sovits extra brings it)")

from synth.engines.gpt_sovits.model import t2s_ort
from synth.engines.gpt_sovits.model.t2s_cache import GROW_COLUMNS, KVCache
from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous
from synth.engines.gpt_sovits.model.t2s_decode import decode_batch, decode_naive
from synth.engines.gpt_sovits.model.t2s_model import build_random_t2s
from synth.engines.gpt_sovits.model.t2s_static import StaticKVCache

ATOL = 1e-5  # another kernel's summation order: float32 rounding only (~1e-6 here)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    model = build_random_t2s(SMALL, seed=3)
    model.pack_for_cpu()
    assert model.ort_step is not None, "onnxruntime is installed: the model must get its step"
    return model


def _prefilled(model, rows: int, length: int, gen: torch.Generator) -> tuple[KVCache, KVCache]:
    """Two identical caches after a prefill of `length` random positions for `rows` rows."""
    cache = model.new_cache()
    with torch.inference_mode():
        model.run(torch.randn(rows, length, model.cfg.embedding_dim, generator=gen), cache, None)
    twin = model.new_cache()
    twin.keys = [k.clone() for k in cache.keys]
    twin.values = [v.clone() for v in cache.values]
    twin.length = cache.length
    return cache, twin


@pytest.mark.parametrize("rows", [1, 3])
def test_step_matches_the_pytorch_step(model, rows: int) -> None:
    """Logits and the cache after each of 150 steps (the cache grows on the way), with columns
    hidden from some rows; 3 rows: the graph takes a batch, though only one row uses it by default."""
    gen = torch.Generator().manual_seed(rows)
    torch_cache, ort_cache = _prefilled(model, rows, 20, gen)
    step, model.ort_step = model.ort_step, None  # model.run: the PyTorch step
    try:
        capacities = set()
        for i in range(150):
            x = torch.randn(rows, 1, model.cfg.embedding_dim, generator=gen)
            bias = torch.zeros(rows, 1, 1, torch_cache.length + 1)
            bias[0, ..., 3] = float("-inf")
            bias[-1, ..., 5:9] = float("-inf")
            with torch.inference_mode():
                want = model.run(x, torch_cache, bias)
                hidden, got = step(x, ort_cache, bias)
            assert hidden.shape == (rows, model.cfg.hidden_dim)
            assert float((want - got).abs().max()) < ATOL, f"step {i}"
            assert ort_cache.length == torch_cache.length == 21 + i
            capacities.add(ort_cache.keys[0].shape[2])
        for a, b in zip(torch_cache.keys + torch_cache.values, ort_cache.keys + ort_cache.values):
            assert float((a[:, :, :torch_cache.length] - b[:, :, :ort_cache.length]).abs().max()) < ATOL
        assert len(capacities) >= 2 and min(capacities) < 20 + GROW_COLUMNS + 2  # it grew, and went on
    finally:
        model.ort_step = step


def test_every_decoder_gives_the_same_tokens_either_way(model) -> None:
    """decode_naive (all steps one row), decode_batch (its last row alone) and decode_continuous
    (its last slot alone) with and without the ONNX Runtime step: the same tokens and stops, logits within float rounding."""
    _, phones, bert, prompt, seeds = small_setup(5, 40)
    step = model.ort_step

    def both(decode):
        model.ort_step = step
        step._io = None
        with_ort = decode()
        assert step._io is not None, "the ONNX Runtime step really ran"
        model.ort_step = None
        try:
            return with_ort, decode()
        finally:
            model.ort_step = step

    for p, b, s in zip(phones, bert, seeds):
        a, t = both(lambda p=p, b=b, s=s: decode_naive(model, p, b, prompt, seed=s, sampling=SAMPLED,
                                                       keep_logits=True, max_steps=120))
        assert a.tokens.tolist() == t.tokens.tolist() and (a.stop, a.index) == (t.stop, t.index)
        assert float((a.logits - t.logits).abs().max()) < ATOL
    with_ort, plain = both(lambda: decode_batch(model, phones, bert, prompt, seed=seeds, sampling=SAMPLED,
                                                max_steps=120))
    assert len({r.steps for r in plain}) > 1  # rows stop apart: the last one decodes alone
    assert [r.tokens.tolist() for r in with_ort] == [r.tokens.tolist() for r in plain]
    # continuous decoding's last slot, alone on its ragged cache; its other steps on the packed flat loop
    with_ort, plain = both(lambda: decode_continuous(model, phones, bert, prompt, slots=2, seed=seeds,
                                                     sampling=SAMPLED, max_steps=120))
    assert [r.tokens.tolist() for r in with_ort] == [r.tokens.tolist() for r in plain] == [
        r.tokens.tolist() for r in (decode_naive(model, p, b, prompt, seed=s, sampling=SAMPLED, max_steps=120)
                                    for p, b, s in zip(phones, bert, seeds))]


def test_a_hooked_output_layer_still_runs_as_a_module(model) -> None:
    gen = torch.Generator().manual_seed(9)
    cache, _ = _prefilled(model, 1, 6, gen)
    handle = model.ar_predict_layer.register_forward_hook(lambda _m, _i, out: out + 100.0)
    try:
        with torch.inference_mode():
            logits = model.run(torch.randn(1, 1, model.cfg.embedding_dim, generator=gen), cache, None)
    finally:
        handle.remove()
    assert float(logits.min()) > 50.0


def test_where_the_step_does_not_apply(model, monkeypatch) -> None:
    step = model.ort_step
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 1, model.cfg.embedding_dim)
    assert not step.fits(x, model.new_cache())  # nothing prefilled yet
    one, _ = _prefilled(model, 1, 4, gen)
    two, _ = _prefilled(model, 2, 4, gen)
    assert step.fits(x, one)
    assert not step.fits(torch.randn(2, 1, model.cfg.embedding_dim), two)  # batches stay on PyTorch
    assert not step.fits(x.double(), one)
    assert not step.fits(x, StaticKVCache(model, 1, 16))  # the static cache's own step (CUDA graphs)
    monkeypatch.setenv(t2s_ort.ENV_SWITCH, "0")
    assert t2s_ort.build_step(model) is None
    monkeypatch.delenv(t2s_ort.ENV_SWITCH)
    assert t2s_ort.build_step(build_random_t2s(SMALL, seed=1, dtype=torch.float64)) is None


def test_a_failing_run_falls_back_to_pytorch_for_good(caplog) -> None:
    """ONNX Runtime failing mid-decode (a broken install, an odd build): the same step is taken on
    PyTorch with the cache untouched, said once in the log, and the model stays on PyTorch."""
    model = build_random_t2s(SMALL, seed=3)
    model.pack_for_cpu()
    gen = torch.Generator().manual_seed(4)
    cache, twin = _prefilled(model, 1, 8, gen)
    x = torch.randn(1, 1, model.cfg.embedding_dim, generator=gen)

    def broken(_binding) -> None:
        raise RuntimeError("simulated ONNX Runtime failure")

    model.ort_step.session.run_with_iobinding = broken
    with torch.inference_mode(), caplog.at_level("WARNING"):
        got = model.run(x, cache, None)
        assert model.ort_step is None
        want = model.run(x, twin, None)
    assert float((got - want).abs().max()) == 0.0 and cache.length == twin.length == 9
    assert "simulated ONNX Runtime failure" in caplog.text and "PyTorch" in caplog.text
