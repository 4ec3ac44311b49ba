"""The static-cache decoder (the CUDA-graph path's code, run eagerly on the CPU): every item's
tokens, stop, index and logits are `decode_batch`'s — across capacity growth, rows stopping at
different steps, and on the reference fixture model against the reference's own batched goldens."""
from __future__ import annotations

import pytest
import torch
from t2s_small import SAMPLED, small_setup

from synth.engines.gpt_sovits.model.t2s_decode import decode_batch, decode_naive
from synth.engines.gpt_sovits.model.t2s_sampling import SamplingParams
from synth.engines.gpt_sovits.model.t2s_static import CAPACITIES, StaticKVCache, capacity_for, decode_static


@pytest.fixture(scope="module")
def setup():
    return small_setup(9, 200)


def same(a, b) -> None:
    assert a.tokens.tolist() == b.tokens.tolist()
    assert (a.stop, a.index, a.steps, a.sequence.tolist()) == (b.stop, b.index, b.steps, b.sequence.tolist())
    assert a.logits.shape == b.logits.shape and float((a.logits - b.logits).abs().max()) < 1e-5


@pytest.mark.parametrize("capacities", [CAPACITIES, (40, 48, 64)])
def test_every_item_decodes_as_in_a_batch(setup, capacities) -> None:
    model, phones, bert, prompt, seeds = setup
    kw = dict(sampling=SAMPLED, seed=seeds, max_steps=26, keep_logits=True)
    batch = decode_batch(model, phones, bert, prompt, **kw)
    assert len({r.steps for r in batch}) >= 4 and {r.stop for r in batch} == {"eos", "cap"}
    got = decode_static(model, phones, bert, prompt, capacities=capacities, **kw)
    for a, b in zip(batch, got):
        same(a, b)
    for a, p, b, s in zip(got, phones, bert, seeds):  # and a row that stops by EOS is its naive decode
        if a.stop == "eos":
            same(decode_naive(model, p, b, prompt, sampling=SAMPLED, seed=s, max_steps=26, keep_logits=True), a)


def test_step_caps(setup) -> None:
    model, phones, bert, prompt, seeds = setup
    for cap in (0, 5, 30):
        kw = dict(sampling=SAMPLED, seed=seeds, early_stop_num=cap)
        for a, b in zip(decode_batch(model, phones, bert, prompt, **kw),
                        decode_static(model, phones, bert, prompt, capacities=(16, 32), **kw)):
            assert (a.tokens.tolist(), a.stop, a.index) == (b.tokens.tolist(), b.stop, b.index)


def test_capacity_buckets_and_growth(setup) -> None:
    model, phones, bert, prompt, _ = setup
    assert [capacity_for(n) for n in (1, 256, 257, 2048, 2049)] == [256, 256, 512, 2048, 3072]
    cache = StaticKVCache(model, batch=2, capacity=16)
    cache.keys[0][:, :, :3] = 1.0
    cache.bias[..., :3] = 0.0
    cache.length = 3
    bigger = cache.grown(model, 32)
    assert bigger.capacity == 32 and bigger.length == 3 and int(bigger.pos) == int(cache.pos)
    assert torch.equal(bigger.keys[0][:, :, :16], cache.keys[0]) and float(bigger.keys[0][:, :, 16:].abs().sum()) == 0
    assert torch.isinf(bigger.bias[..., 3:]).all() and (bigger.bias[..., :3] == 0).all()
    with pytest.raises(NotImplementedError):
        cache.keep_rows(torch.tensor([0]))


def test_graphs_need_cuda(setup) -> None:
    model, phones, bert, prompt, seeds = setup
    with pytest.raises(ValueError, match="CUDA"):
        decode_static(model, phones, bert, prompt, graphs=True)


@pytest.mark.parametrize("name", ["batch1_rp1.35", "batch2_rp1.35"])
def test_reference_batched_goldens(name: str) -> None:
    import gpt_sovits_fixtures as fx

    path = fx.fixture_path("tiny-e1.ckpt")  # skips, saying why, when ../shared is absent
    from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
    from synth.engines.gpt_sovits.model.t2s import load_t2s

    model = load_t2s(load_gpt_checkpoint(path))
    gpt = fx.expected()["gpt"]
    case = gpt["cases"][name]
    bert_ref = torch.from_numpy(fx.load_npy("gpt", "bert_ref.npy"))
    phones = [torch.from_numpy(fx.load_npy("gpt", "all_phone_ids.npy"))[0],
              torch.tensor(gpt["ref_phone_ids"] + gpt["tgt2_phone_ids"])][: len(case["x_lens"])]
    berts = [torch.from_numpy(fx.load_npy("gpt", "all_bert.npy")),
             torch.cat([bert_ref, torch.from_numpy(fx.load_npy("gpt", "bert_tgt2.npy"))], dim=1)][: len(case["x_lens"])]
    out = decode_static(model, phones, berts, torch.from_numpy(fx.load_npy("gpt", "prompt_semantic.npy"))[0],
                        sampling=SamplingParams(top_k=1, top_p=1.0, temperature=1.0, repetition_penalty=1.35),
                        early_stop_num=case["early_stop_num"], max_len=case["max_len"])
    assert [r.index for r in out] == case["idx_list"]
    assert [r.sequence.tolist() for r in out] == case["y_list"]
    assert [r.tokens.tolist() for r in out] == case["pred"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bench/gpu_check.py runs it there)")
def test_cuda_graph_replay_equals_eager(setup) -> None:
    model, phones, bert, prompt, seeds = setup
    gpu = model.to("cuda")
    try:
        kw = dict(sampling=SAMPLED, seed=seeds, max_steps=120, keep_logits=True, capacities=(40, 48, 64))
        for a, b in zip(decode_static(gpu, phones, bert, prompt, graphs=False, **kw),
                        decode_static(gpu, phones, bert, prompt, graphs=True, **kw)):
            same(a, b)
    finally:
        model.to("cpu")


def test_gpu_check_script_runs_dry() -> None:
    """bench/gpu_check.py waits for a GPU; its dry run checks the script itself here, so that it
    works the first time a GPU is lent: every way decodes the same tokens."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"
    out = subprocess.run([sys.executable, str(script), "--dry-run", "--batches", "1,3", "--tokens", "6", "--reps", "1",
                          "--no-tests"], capture_output=True, text=True, timeout=300, check=True).stdout
    rows = [line for line in out.splitlines() if "rows differ" in line]
    assert len(rows) == 6 and all(" 0/" in line for line in rows), out
    assert sum("rows equal" in line for line in rows) == 2, out
