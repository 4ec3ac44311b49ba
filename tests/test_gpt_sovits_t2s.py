"""Text-to-semantic (GPT) parity with the reference goldens, plus sampling/decoding invariants."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gpt_sovits_fixtures import expected, fixture_path, load_json, load_npy
from t2s_small import plain_modules

from synth.errors import VoiceError
from synth.engines.gpt_sovits.model.checkpoint import GptCheckpoint, load_gpt_checkpoint
from synth.engines.gpt_sovits.model.t2s import (
    SamplingParams,
    T2SConfig,
    build_random_t2s,
    decode_batch,
    decode_naive,
    load_t2s,
    pipeline_early_stop_num,
)
from synth.engines.gpt_sovits.model.t2s_sampling import apply_repetition_penalty_, draw, draw_rows, probabilities

GREEDY = {"top_k": 1, "top_p": 1.0, "temperature": 1.0}
LOGITS_ATOL = 1e-4  # README: float32 noise ~6e-6, logits up to |25|
# One row alone vs in a padded batch: float32 summation order only — ~6e-6, and up to 1.3e-5 on a
# logit of 16 where oneDNN picks AVX-512/AMX-era kernels (Sapphire Rapids): relative, then, too.
ROW_LOGITS_ATOL, ROW_LOGITS_RTOL = 1e-5, 2e-6
SAMPLED = SamplingParams(top_k=15, top_p=1.0, temperature=1.0, repetition_penalty=1.35)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_t2s(load_gpt_checkpoint(fixture_path("tiny-e1.ckpt")))


@pytest.fixture(scope="module")
def inputs() -> dict[str, torch.Tensor]:
    gpt = expected()["gpt"]
    bert_ref = torch.from_numpy(load_npy("gpt", "bert_ref.npy"))
    return {
        "phones": torch.from_numpy(load_npy("gpt", "all_phone_ids.npy"))[0],
        "bert": torch.from_numpy(load_npy("gpt", "all_bert.npy")),
        "prompt": torch.from_numpy(load_npy("gpt", "prompt_semantic.npy"))[0],
        "tgt": torch.tensor(gpt["tgt_phone_ids"]),
        "bert_tgt": torch.from_numpy(load_npy("gpt", "bert_tgt.npy")),
        "phones2": torch.tensor(gpt["ref_phone_ids"] + gpt["tgt2_phone_ids"]),
        "bert2": torch.cat([bert_ref, torch.from_numpy(load_npy("gpt", "bert_tgt2.npy"))], dim=1),
    }


def _case(name: str) -> dict:
    return expected()["gpt"]["cases"][name]


def test_model_matches_checkpoint_layout(model) -> None:
    layout = load_json("tiny_ckpt_layout.json")["gpt_ckpt"]["keys"]
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = {k.removeprefix("model."): tuple(shape) for k, shape, _ in layout}
    assert ours == ref


def test_full_size_v2_layout_matches_reference_keys() -> None:
    full = load_json("keys_full_v2.json")["gpt"]
    net = build_random_t2s(full["config_default_yaml"]["model"], seed=0)
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    ref = {name.removeprefix("model."): tuple(shape) for name, shape, *_ in full["keys"]}
    assert ours == ref
    assert sum(p.numel() for p in net.parameters()) == full["num_elements"]


@pytest.mark.parametrize("rp", ["1.35", "1.0"])
def test_naive_logits_and_tokens_match_reference(model, inputs, rp: str) -> None:
    case = _case(f"naive_rp{rp}")
    out = decode_naive(
        model, inputs["phones"], inputs["bert"], inputs["prompt"],
        sampling=SamplingParams(**GREEDY, repetition_penalty=float(rp)),
        early_stop_num=case["early_stop_num"], keep_logits=True,
    )
    golden = load_npy("gpt", f"naive_rp{rp}_logits.npy")
    assert out.logits is not None and out.logits.shape == golden.shape
    np.testing.assert_allclose(out.logits.numpy(), golden, rtol=0, atol=LOGITS_ATOL)
    assert out.sequence.tolist() == case["y_full"]
    assert out.index == case["idx"]
    assert out.tokens.tolist() == case["pred"] == load_npy("gpt", f"naive_rp{rp}_pred.npy")[0].tolist()
    assert out.stop == ("eos" if case["eos_sampled"] else "cap")
    assert out.steps == case["steps"]


def test_reference_free_matches_reference(model, inputs) -> None:
    case = _case("naive_reffree_rp1.35")
    out = decode_naive(
        model, inputs["tgt"], inputs["bert_tgt"], None,
        sampling=SamplingParams(**GREEDY, repetition_penalty=1.35), early_stop_num=40,
    )
    assert out.index == 0
    assert out.tokens.tolist() == case["pred"] == load_npy("gpt", "naive_reffree_rp1.35_pred.npy")[0].tolist()
    assert out.sequence.tolist() == case["y_full"]


@pytest.mark.parametrize("name", ["batch1_rp1.35", "batch2_rp1.35"])
def test_batch_matches_reference(model, inputs, name: str) -> None:
    case = _case(name)
    phones = [inputs["phones"], inputs["phones2"]][: len(case["x_lens"])]
    berts = [inputs["bert"], inputs["bert2"]][: len(case["x_lens"])]
    assert [p.shape[0] for p in phones] == case["x_lens"]
    out = decode_batch(
        model, phones, berts, inputs["prompt"],
        sampling=SamplingParams(**GREEDY, repetition_penalty=1.35),
        early_stop_num=case["early_stop_num"], max_len=case["max_len"],
    )
    assert [r.index for r in out] == case["idx_list"]
    assert [r.sequence.tolist() for r in out] == case["y_list"]
    assert [r.tokens.tolist() for r in out] == case["pred"]
    for i, r in enumerate(out):
        assert r.tokens.tolist() == load_npy("gpt", f"{name.split('_')[0]}_rp1.35_pred{i}.npy").tolist()


def test_batch_without_prompt_falls_back_to_reference_free(model, inputs) -> None:
    out = decode_batch(
        model, [inputs["tgt"]], [inputs["bert_tgt"]], None,
        sampling=SamplingParams(**GREEDY, repetition_penalty=1.35), early_stop_num=40,
    )
    assert out[0].tokens.tolist() == _case("naive_reffree_rp1.35")["pred"]


def test_seeded_sampling_is_reproducible_and_seed_dependent(model, inputs) -> None:
    params = SamplingParams(top_k=15, top_p=0.9, temperature=1.0, repetition_penalty=1.35)
    args = (model, inputs["phones"], inputs["bert"], inputs["prompt"])
    a = decode_naive(*args, sampling=params, early_stop_num=30, seed=7)
    b = decode_naive(*args, sampling=params, early_stop_num=30, seed=7)
    c = decode_naive(*args, sampling=params, early_stop_num=30, seed=8)
    assert torch.equal(a.sequence, b.sequence)
    assert not torch.equal(a.sequence, c.sequence)
    batch = decode_batch(model, [inputs["phones"]], [inputs["bert"]], inputs["prompt"],
                         sampling=params, early_stop_num=30, seed=7)
    # Same stream, same model: only the reference's different cap slices tell them apart.
    assert batch[0].stop == a.stop
    expected_seq = a.sequence[:-1] if a.stop == "cap" else a.sequence
    assert torch.equal(batch[0].sequence, expected_seq)


def _three_items(inputs) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(phones, bert) of three sentences of different lengths: 39, 26 and 18 phones."""
    return [
        (inputs["phones"], inputs["bert"]),
        (inputs["phones2"], inputs["bert2"]),
        (inputs["tgt"], inputs["bert_tgt"]),
    ]


def _decode(model, items, prompt, seeds, **kw):
    return decode_batch(model, [p for p, _ in items], [b for _, b in items], prompt,
                        sampling=SAMPLED, seed=seeds, keep_logits=True, **kw)


def test_sampled_tokens_do_not_depend_on_the_batch(model, inputs) -> None:
    """top_k=15 sampling: each item's tokens are the same alone, in a batch of three of different
    lengths (rows leaving at different steps) and in another order with wider padding."""
    items, seeds = _three_items(inputs), [11, 22, 33]
    alone = [_decode(model, [item], inputs["prompt"], [s])[0] for item, s in zip(items, seeds)]
    assert len({r.steps for r in alone}) == 3  # rows really finish at different steps
    assert len({tuple(r.tokens.tolist()) for r in alone}) == 3
    batch = _decode(model, items, inputs["prompt"], seeds)
    order = [2, 0, 1]
    permuted = _decode(model, [items[i] for i in order], inputs["prompt"], [seeds[i] for i in order], max_len=50)
    reordered = [permuted[order.index(i)] for i in range(3)]
    for solo, *others in zip(alone, batch, reordered):
        for other in others:
            assert solo.logits is not None and other.logits is not None
            assert other.logits.shape == solo.logits.shape
            np.testing.assert_allclose(other.logits.numpy(), solo.logits.numpy(), rtol=ROW_LOGITS_RTOL, atol=ROW_LOGITS_ATOL)
            assert other.tokens.tolist() == solo.tokens.tolist()
            assert (other.stop, other.index, other.sequence.tolist()) == (solo.stop, solo.index, solo.sequence.tolist())


def test_batch_seeds_select_the_streams(model, inputs) -> None:
    """Different seeds give different tokens for every item; an int seed seeds every row alike, and
    explicit generators (any device) are used as given."""
    items = _three_items(inputs)
    a = _decode(model, items, inputs["prompt"], [11, 22, 33], early_stop_num=30)
    b = _decode(model, items, inputs["prompt"], [12, 23, 34], early_stop_num=30)
    for x, y in zip(a, b):
        assert x.tokens.tolist() != y.tokens.tolist()
    shared = _decode(model, items, inputs["prompt"], 22, early_stop_num=30)
    assert shared[1].tokens.tolist() == a[1].tokens.tolist()
    gens = [torch.Generator().manual_seed(s) for s in (11, 22, 33)]
    given = decode_batch(model, [p for p, _ in items], [q for _, q in items], inputs["prompt"],
                         sampling=SAMPLED, early_stop_num=30, generators=gens)
    assert [r.tokens.tolist() for r in given] == [r.tokens.tolist() for r in a]
    with pytest.raises(ValueError, match="2 seeds for 3 items"):
        _decode(model, items, inputs["prompt"], [1, 2])
    with pytest.raises(ValueError, match="1 generators for 3 items"):
        decode_batch(model, [p for p, _ in items], [q for _, q in items], inputs["prompt"], generators=gens[:1])


def test_row_draws_equal_single_row_draws() -> None:
    """Row r of a per-row draw consumes only generator r, exactly like a batch of one."""
    probs = torch.softmax(torch.randn(3, 1025, generator=torch.Generator().manual_seed(0)) * 3, dim=-1)
    gens = [torch.Generator().manual_seed(s) for s in (5, 6, 7)]
    together = [draw_rows(probs, gens) for _ in range(4)]  # four steps
    for r, s in enumerate((5, 6, 7)):
        g = torch.Generator().manual_seed(s)
        assert [int(t[r, 0]) for t in together] == [int(draw(probs[r : r + 1], g)[0, 0]) for _ in range(4)]
    half = probs.half()  # fp16 probabilities are raced in float32: same winners
    assert torch.equal(draw(half, torch.Generator().manual_seed(1)), draw(half.float(), torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="2 generators for 3 rows"):
        draw_rows(probs, gens[:2])


def test_explicit_generator_stream_equals_global_seed_stream() -> None:
    """The reference draws from the global RNG; a fresh CPU generator with the same seed is equal."""
    torch.manual_seed(1234)
    reference = torch.empty(2, 1025).exponential_(1.0)
    ours = torch.empty(2, 1025).exponential_(1.0, generator=torch.Generator().manual_seed(1234))
    assert torch.equal(reference, ours)


def test_eos_is_never_produced_in_the_first_eleven_steps(model, inputs) -> None:
    # A model whose EOS logit is huge still emits 11 tokens, then stops by EOS.
    rigged = load_t2s(load_gpt_checkpoint(fixture_path("tiny-e1.ckpt")))
    bias = torch.zeros(rigged.cfg.vocab_size)
    bias[-1] = 1e4
    rigged.ar_predict_layer.register_forward_hook(lambda _m, _i, out: out + bias)
    out = decode_naive(rigged, inputs["phones"], inputs["bert"], inputs["prompt"],
                       sampling=SamplingParams(**GREEDY, repetition_penalty=1.0))
    assert out.stop == "eos" and out.index == 11 and out.tokens.shape[0] == 11


def test_eos_test_sees_the_penalised_logits(model, inputs) -> None:
    """Raw argmax is a prompt token, but after the penalty EOS leads: the reference stops there
    (at the first step EOS is allowed) even when the random draw picked something else."""
    rigged = load_t2s(load_gpt_checkpoint(fixture_path("tiny-e1.ckpt")))
    fixed = torch.full((rigged.cfg.vocab_size,), -10.0)
    fixed[int(inputs["prompt"][0])] = 10.0  # 10 / 1.35 = 7.4 after the penalty
    fixed[-1] = 9.0
    rigged.ar_predict_layer.register_forward_hook(lambda _m, _i, out: fixed.expand_as(out).clone())
    hot = SamplingParams(top_k=2, top_p=None, temperature=100.0, repetition_penalty=1.35)
    for seed in range(10):
        out = decode_naive(rigged, inputs["phones"], inputs["bert"], inputs["prompt"], sampling=hot, seed=seed)
        assert (out.stop, out.index) == ("eos", 11)


def test_sampling_order_and_penalty() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    apply_repetition_penalty_(logits, torch.tensor([[0, 1, 1]]), 2.0)
    assert logits.tolist() == [[1.0, -2.0, 0.5, 3.0]]  # repeats penalised once
    probs = probabilities(logits, SamplingParams(top_k=2, top_p=None, temperature=1.0))
    assert probs[0, 1] == 0 and probs[0, 2] == 0 and probs[0, 3] > probs[0, 0] > 0
    probs = probabilities(logits, SamplingParams(top_k=None, top_p=0.5, temperature=1.0))
    assert probs[0].tolist() == [0.0, 0.0, 0.0, 1.0]  # token 3 alone has p > 0.5
    probs = probabilities(logits, SamplingParams(top_k=None, top_p=0.5, temperature=100.0))
    assert probs[0].tolist() == [0.0, 0.0, 0.0, 1.0]  # top-p looks at the logits BEFORE temperature
    one_hot = torch.tensor([[0.0, 0.0, 1.0, 0.0]]).repeat(64, 1)
    assert draw(one_hot, torch.Generator().manual_seed(0)).flatten().tolist() == [2] * 64
    counts = torch.bincount(
        draw(torch.tensor([[0.25, 0.75]]).repeat(20000, 1), torch.Generator().manual_seed(0)).flatten(),
        minlength=2,
    )
    assert abs(counts[1].item() / 20000 - 0.75) < 0.02


def test_bad_inputs_raise(model, inputs) -> None:
    with pytest.raises(ValueError, match="BERT"):
        decode_naive(model, inputs["phones"], inputs["bert"][:, :-1], inputs["prompt"])
    with pytest.raises(ValueError, match="max_len"):
        decode_batch(model, [inputs["phones"]], [inputs["bert"]], inputs["prompt"], max_len=5)
    with pytest.raises(ValueError, match="prompt"):
        decode_naive(model, inputs["phones"], inputs["bert"], torch.tensor([1024]))


def test_bad_config_is_a_voice_error(tmp_path) -> None:
    ckpt = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))
    broken = GptCheckpoint(weights=ckpt.weights, config={"model": {"EOS": 1024}}, info="", path=tmp_path)
    with pytest.raises(VoiceError, match="lacks"):
        load_t2s(broken)
    weights = dict(ckpt.weights)
    del weights["h.layers.1.norm2.bias"]
    with pytest.raises(VoiceError, match="h.layers.1.norm2.bias"):
        load_t2s(GptCheckpoint(weights=weights, config=ckpt.config, info="", path=tmp_path))
    with pytest.raises(VoiceError, match="EOS"):
        T2SConfig.from_checkpoint_config({**ckpt.config["model"], "EOS": 3})


def test_float64_matches_and_float16_runs(inputs) -> None:
    """dtype plumbing: float64 reproduces the goldens (README: tokens identical); fp16 stays close."""
    ckpt = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))
    case = _case("naive_rp1.35")
    golden = load_npy("gpt", "naive_rp1.35_logits.npy")
    params = SamplingParams(**GREEDY, repetition_penalty=1.35)
    args = (inputs["phones"], inputs["bert"], inputs["prompt"])
    out64 = decode_naive(load_t2s(ckpt, dtype=torch.float64), *args, sampling=params,
                         early_stop_num=40, keep_logits=True)
    assert out64.tokens.tolist() == case["pred"]
    np.testing.assert_allclose(out64.logits.numpy(), golden, rtol=0, atol=LOGITS_ATOL)
    out16 = decode_naive(load_t2s(ckpt, dtype=torch.float16), *args, sampling=params,
                         early_stop_num=40, keep_logits=True)
    assert out16.logits is not None and torch.isfinite(out16.logits).all()
    # first step only: later steps may legitimately diverge once a near-tie flips
    np.testing.assert_allclose(out16.logits[0].numpy(), golden[0], rtol=0, atol=0.1)


def test_random_full_size_builder_is_seeded() -> None:
    cfg = {**load_json("keys_full_v2.json")["gpt"]["config_default_yaml"]["model"], "n_layer": 2}
    a, b = build_random_t2s(cfg, seed=3), build_random_t2s(cfg, seed=3)
    c = build_random_t2s(cfg, seed=4)
    key = "h.layers.1.linear1.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], c.state_dict()[key])


def test_pipeline_early_stop_num() -> None:
    config = load_gpt_checkpoint(fixture_path("tiny-e1.ckpt")).config
    assert pipeline_early_stop_num(config) == 50 * 54
    assert pipeline_early_stop_num({"model": {}}) == -1


def test_cpu_packed_weights_change_nothing_but_speed(inputs) -> None:
    """The oneDNN-packed linear weights and the flat decoding step (t2s_cpu.py, used for decoding
    steps on a CPU) give the plain modules' tokens and the reference's logits, in a batch too; the
    state dict (and so the checkpoint layout) is unchanged."""
    from synth.engines.gpt_sovits.model import t2s_cpu

    if not t2s_cpu.available():
        pytest.skip("this torch build has no oneDNN linear operators: nothing is packed")
    packed = load_t2s(load_gpt_checkpoint(fixture_path("tiny-e1.ckpt")))
    # back to the plain path: modules, MKL, no flat step, no ONNX Runtime step (test_gpt_sovits_ort compares that one)
    plain = plain_modules(load_t2s(load_gpt_checkpoint(fixture_path("tiny-e1.ckpt"))))
    assert packed.cpu_layers is not None and len(packed.cpu_layers) == packed.cfg.num_layers
    assert packed.h.layers[0].linear1.packed is not None and packed.h.layers[0].self_attn.in_proj_packed is not None
    assert packed.pack_for_cpu() == 4 * packed.cfg.num_layers + 1  # qkv, out, ffn×2 per layer + the output layer
    assert set(packed.state_dict()) == set(plain.state_dict())
    kw = {"sampling": SAMPLED, "seed": [3, 4], "keep_logits": True, "early_stop_num": 30}
    phones, berts = [inputs["phones"], inputs["phones2"]], [inputs["bert"], inputs["bert2"]]
    for a, b in zip(decode_batch(plain, phones, berts, inputs["prompt"], **kw),
                    decode_batch(packed, phones, berts, inputs["prompt"], **kw)):
        assert a.tokens.tolist() == b.tokens.tolist()
        # another kernel's summation order: float32 rounding of logits up to |25| (~1e-5)
        np.testing.assert_allclose(a.logits.numpy(), b.logits.numpy(), rtol=0, atol=LOGITS_ATOL)
    golden = load_npy("gpt", "naive_rp1.0_logits.npy")
    out = decode_naive(packed, inputs["phones"], inputs["bert"], inputs["prompt"],
                       sampling=SamplingParams(**GREEDY, repetition_penalty=1.0), keep_logits=True,
                       max_steps=golden.shape[0])
    np.testing.assert_allclose(out.logits.numpy(), golden[: out.logits.shape[0]], rtol=0, atol=LOGITS_ATOL)
