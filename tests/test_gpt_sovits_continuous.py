"""Continuous batching of the T2S decoder: every item's tokens, stop, index and logits are those of
its own `decode_naive`, whatever shares its slots, however many slots, in any order — on a small
seeded random model here, and on the reference fixture's model when ../shared is present."""
from __future__ import annotations

import pytest
import torch
from t2s_small import SAMPLED, small_setup

from synth.engines.gpt_sovits.model.t2s_continuous import decode_continuous
from synth.engines.gpt_sovits.model.t2s_decode import decode_batch, decode_naive


@pytest.fixture(scope="module")
def setup():
    return small_setup(11, 100)


def naive(model, phones, bert, prompt, seeds, **kw):
    return [decode_naive(model, p, b, prompt, seed=s, sampling=SAMPLED, keep_logits=True, **kw)
            for p, b, s in zip(phones, bert, seeds)]


def same(a, b) -> None:
    assert a.tokens.tolist() == b.tokens.tolist()
    assert (a.stop, a.index, a.steps, a.sequence.tolist()) == (b.stop, b.index, b.steps, b.sequence.tolist())
    assert a.logits.shape == b.logits.shape and float((a.logits - b.logits).abs().max()) < 1e-5


@pytest.mark.parametrize("slots", [1, 3, 4, 16])
def test_every_item_decodes_as_alone(setup, slots: int) -> None:
    model, phones, bert, prompt, seeds = setup
    alone = naive(model, phones, bert, prompt, seeds, max_steps=200)
    assert len({r.steps for r in alone}) >= 5  # rows really stop at different steps: slots refill
    done = []
    got = decode_continuous(model, phones, bert, prompt, slots=slots, sampling=SAMPLED, seed=seeds, max_steps=200,
                            keep_logits=True, on_done=lambda i, r: done.append(i))
    for a, b in zip(alone, got):
        same(a, b)
    assert sorted(done) == list(range(len(phones)))
    if 1 < slots < len(phones):
        assert done != sorted(done)  # items finished out of order, and each was reported as it did


def test_caps_per_item_and_the_step_limit(setup) -> None:
    model, phones, bert, prompt, seeds = setup
    caps = [12, -1, 20, 30, 12, -1, 25, 14, 40, 13, 18]
    got = decode_continuous(model, phones, bert, prompt, slots=4, sampling=SAMPLED, seed=seeds, max_steps=35,
                            early_stop_num=caps, keep_logits=True)
    for p, b, s, cap, r in zip(phones, bert, seeds, caps, got):
        same(decode_naive(model, p, b, prompt, seed=s, sampling=SAMPLED, keep_logits=True, max_steps=35,
                          early_stop_num=cap), r)
    assert {r.stop for r in got} == {"eos", "cap"}


def test_order_and_slots_do_not_change_an_item(setup) -> None:
    model, phones, bert, prompt, seeds = setup
    order = [7, 2, 9, 0, 10, 4, 1, 8, 3, 6, 5]
    a = decode_continuous(model, phones, bert, prompt, slots=3, sampling=SAMPLED, seed=seeds)
    b = decode_continuous(model, [phones[i] for i in order], [bert[i] for i in order], prompt, slots=5,
                          sampling=SAMPLED, seed=[seeds[i] for i in order])
    assert [a[i].tokens.tolist() for i in order] == [r.tokens.tolist() for r in b]
    static = decode_batch(model, phones[:4], bert[:4], prompt, sampling=SAMPLED, seed=seeds[:4])
    assert [r.tokens.tolist() for r in static if r.stop == "eos"] == [
        r.tokens.tolist() for r, s in zip(a[:4], static) if s.stop == "eos"]


def test_bad_arguments(setup) -> None:
    model, phones, bert, prompt, _ = setup
    with pytest.raises(ValueError, match="slots"):
        decode_continuous(model, phones, bert, prompt, slots=0)
    with pytest.raises(ValueError, match="early_stop_num values"):
        decode_continuous(model, phones, bert, prompt, early_stop_num=[1, 2])
    with pytest.raises(ValueError, match="needs a prompt"):
        decode_continuous(model, phones, bert, torch.zeros(0, dtype=torch.long))


def test_reference_fixture_model(setup) -> None:
    import gpt_sovits_fixtures as gpt_fixtures

    path = gpt_fixtures.fixture_path("tiny-e1.ckpt")  # skips, saying why, when ../shared is absent
    from synth.engines.gpt_sovits.model.checkpoint import load_gpt_checkpoint
    from synth.engines.gpt_sovits.model.t2s import load_t2s

    model = load_t2s(load_gpt_checkpoint(path))
    prompt = torch.from_numpy(gpt_fixtures.load_npy("gpt", "prompt_semantic.npy"))[0]
    phones_all = torch.from_numpy(gpt_fixtures.load_npy("gpt", "all_phone_ids.npy"))[0]
    bert_all = torch.from_numpy(gpt_fixtures.load_npy("gpt", "all_bert.npy"))
    cuts = [(0, len(phones_all)), (0, len(phones_all) // 2), (len(phones_all) // 3, len(phones_all))]
    phones = [phones_all[a:b] for a, b in cuts]
    bert = [bert_all[:, a:b] for a, b in cuts]
    seeds = [11, 22, 33]
    alone = naive(model, phones, bert, prompt, seeds, max_steps=150)
    for a, b in zip(alone, decode_continuous(model, phones, bert, prompt, slots=2, sampling=SAMPLED, seed=seeds,
                                             max_steps=150, keep_logits=True)):
        same(a, b)


def test_ragged_cache_rows_keep_their_own_columns() -> None:
    """Each row writes after its own last column, sees exactly its own, and keeps them through
    growth, release and dropped rows."""
    from synth.engines.gpt_sovits.model.t2s_cache import GROW_COLUMNS, KVCache, RaggedCache

    def own(length: int, fill: float) -> KVCache:
        c = KVCache(1)
        c.write(0, torch.full((1, 2, length, 3), fill), torch.full((1, 2, length, 3), -fill))
        c.advance(length)
        return c

    cache = RaggedCache(1, 3)
    cache.place(0, own(4, 1.0))
    cache.place(2, own(2, 3.0))
    assert cache.lengths == [4, 0, 2] and cache.length == 4
    bias = cache.bias()
    assert bias.shape == (3, 1, 1, 5)
    assert [int((b == 0).sum()) for b in bias[:, 0, 0]] == [5, 1, 3]  # own columns and the new one
    k_all, v_all = cache.write(0, torch.full((3, 2, 1, 3), 9.0), torch.full((3, 2, 1, 3), -9.0))
    assert k_all.shape == (3, 2, 5, 3)
    assert k_all[0, :, 4].eq(9).all() and k_all[1, :, 0].eq(9).all() and k_all[2, :, 2].eq(9).all()
    assert k_all[0, :, :4].eq(1).all() and k_all[2, :, :2].eq(3).all() and v_all[2, :, 2].eq(-9).all()
    cache.advance(1)
    assert cache.lengths == [5, 1, 3]
    cache.place(1, own(GROW_COLUMNS + 10, 5.0))  # grows every row's buffers, contents kept
    assert cache.keys[0].shape[2] > GROW_COLUMNS + 10 and cache.keys[0][0, :, :4].eq(1).all()
    cache.release(1)
    assert cache.lengths == [5, 0, 3] and cache.length == 5
    cache.keep_rows(torch.tensor([2]))
    assert cache.lengths == [3] and cache.keys[0].shape[0] == 1 and cache.keys[0][0, :, :2].eq(3).all()
    with pytest.raises(ValueError):
        cache.write(0, torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3))

