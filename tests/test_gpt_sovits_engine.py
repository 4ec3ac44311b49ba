"""The layer joining GPT-SoVITS model code to voices and text: voice folders, the voice check, BERT
and HuBERT features, reference audio handling and the bookcast engine.

Tiny random BERT (hidden 1024) and HuBERT (hidden 768) models are written with `save_pretrained`
into a temporary folder once per session (the `aux_models` fixture, conftest.py / gpt_sovits_aux.py); the GPT/SoVITS weights are the tiny official-format
fixtures from ../shared (tests skip when it is absent).
"""
from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from gpt_sovits_fixtures import fixture_path

from synth.engines.gpt_sovits.model.bert import BERT_DIM, BertFeatures, run_features
from synth.engines.gpt_sovits.model.ssl import (
    HubertFeatures,
    check_reference_length,
    padded_prompt_wav,
    read_audio,
    reference_16k,
    reference_for_spectrogram,
)
from synth.engines.gpt_sovits.voice import SamplingSettings, check_voice, load_voice, parse_voice, voice_fingerprint
from synth.errors import SynthesisError, VoiceError


def _fixtures() -> Path:
    fixture_path("tiny_e1_s1.pth")
    return fixture_path("tiny-e1.ckpt").parent


def _write_clip(path: Path, audio: np.ndarray, rate: int = 32000) -> Path:
    sf.write(str(path), audio.astype(np.float32), rate, subtype="PCM_16")
    return path


def _ref_wav() -> np.ndarray:
    return np.load(_fixtures() / "sovits" / "ref_wav.npy")[0]  # (128000,) 4 s at 32 kHz


def _make_voice(folder: Path, aux: tuple[Path, Path], *, text: str = "今天天气真好。", extra: str = "") -> Path:
    fx = _fixtures()
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tiny-e1.ckpt", "tiny_e1_s1.pth"):
        if not (folder / name).exists():
            (folder / name).symlink_to(fx / name)
    _write_clip(folder / "ref.wav", _ref_wav())
    bert_dir, hubert_dir = aux
    text_line = f'text = "{text}"\n' if text else ""
    (folder / "voice.toml").write_text(
        f'name = "tiny"\nbert = "{bert_dir}"\nhubert = "{hubert_dir}"\n\n'
        f'[[reference]]\naudio = "ref.wav"\n{text_line}language = "zh"\n{extra}',
        encoding="utf-8",
    )
    return folder


# ------------------------------------------------------------------------------------ voice.toml


def test_load_voice_defaults_and_discovery(tmp_path, aux_models):
    voice = load_voice(_make_voice(tmp_path / "v", aux_models))
    assert voice.name == "tiny"
    assert voice.gpt.name == "tiny-e1.ckpt" and voice.sovits.name == "tiny_e1_s1.pth"  # found by suffix
    assert voice.settings == SamplingSettings()
    assert (voice.settings.top_k, voice.settings.top_p, voice.settings.temperature) == (15, 1.0, 1.0)
    assert voice.settings.repetition_penalty == 1.35
    assert voice.prompt.text == "今天天气真好。" and not voice.reference_free


def test_voice_toml_errors_name_the_file(tmp_path, aux_models):
    folder = _make_voice(tmp_path / "v", aux_models, extra="\n[settings]\ntop_k = 0\n")
    with pytest.raises(VoiceError, match=r"voice\.toml: settings: top_k"):
        parse_voice(folder)
    folder = _make_voice(tmp_path / "w", aux_models, extra="\n[settings]\ntopk = 3\n")
    with pytest.raises(VoiceError, match="unknown \\[settings\\] keys: topk"):
        parse_voice(folder)
    toml = folder / "voice.toml"
    toml.write_text(toml.read_text().replace('language = "zh"', 'language = "ja"'))
    with pytest.raises(VoiceError, match="language 'ja' is not supported"):
        parse_voice(folder)
    toml.write_text("gpt = [")
    with pytest.raises(VoiceError, match="invalid TOML"):
        parse_voice(folder)
    with pytest.raises(VoiceError, match="no voice.toml"):
        parse_voice(tmp_path)


def test_load_voice_missing_file(tmp_path, aux_models):
    folder = _make_voice(tmp_path / "v", aux_models)
    (folder / "ref.wav").unlink()
    with pytest.raises(VoiceError, match=r"ref\.wav: reference clip 1 not found"):
        load_voice(folder)


def test_fingerprint_tracks_contents_and_settings(tmp_path, aux_models):
    a = load_voice(_make_voice(tmp_path / "a", aux_models))
    b = load_voice(_make_voice(tmp_path / "b", aux_models))
    assert voice_fingerprint(a) == voice_fingerprint(b)  # same contents elsewhere: same sound
    assert voice_fingerprint(a) != voice_fingerprint(replace(a, settings=replace(a.settings, seed=1)))
    assert voice_fingerprint(a) != voice_fingerprint(replace(a, references=(replace(a.prompt, text="别的。"),)))
    _write_clip(tmp_path / "b" / "ref.wav", _ref_wav() * 0.5)
    assert voice_fingerprint(a) != voice_fingerprint(load_voice(tmp_path / "b"))


# ------------------------------------------------------------------------------------ voice check


def test_check_voice_passes_on_good_folder(tmp_path, aux_models):
    report = check_voice(_make_voice(tmp_path / "v", aux_models))
    text = "\n".join(report.lines())
    assert report.ok, text
    assert "32000 Hz" in text and "v2" in text and "GPT-e1" in text and "4.00 s" in text
    assert "13 phones (zh)" in text  # 今天天气真好。: 6 syllables × 2 phones + '.'
    assert text.splitlines()[-1].startswith("OK: 0 error(s)")


def test_check_voice_reports_every_problem(tmp_path, aux_models):
    folder = _make_voice(tmp_path / "v", aux_models, extra='\n[[reference]]\naudio = "short.wav"\n'
                         '\n[[reference]]\naudio = "silent.wav"\n\n[[reference]]\naudio = "gone.wav"\n')
    _write_clip(folder / "short.wav", _ref_wav()[: 2 * 32000])  # 2 s
    _write_clip(folder / "silent.wav", np.zeros(4 * 32000, dtype=np.float32))
    report = check_voice(folder)
    assert not report.ok
    errors = {f.subject: f.detail for f in report.errors}
    assert set(errors) == {"reference 2", "reference 3", "reference clip 4"}, report.lines()
    assert "short.wav: reference clip is 2.00 s; it must be 3–10 s long" in errors["reference 2"]
    assert "silent.wav: reference clip is silent" in errors["reference 3"]
    assert "gone.wav" in errors["reference clip 4"]
    assert report.lines()[-1].startswith("NOT USABLE: 3 error(s)")


def test_check_voice_refuses_v3_and_broken_weights(tmp_path, aux_models):
    folder = _make_voice(tmp_path / "v", aux_models)
    (folder / "tiny_e1_s1.pth").unlink()
    data = (_fixtures() / "tiny_e1_s1.pth").read_bytes()
    (folder / "tiny_e1_s1.pth").write_bytes(b"02" + data[2:])
    (folder / "tiny-e1.ckpt").unlink()
    (folder / "tiny-e1.ckpt").write_bytes(b"PK\x03\x04 truncated")
    report = check_voice(folder)
    details = {f.subject: f.detail for f in report.errors}
    assert "version v3" in details["SoVITS weights"] and "tiny_e1_s1.pth" in details["SoVITS weights"]
    assert "tiny-e1.ckpt" in details["GPT weights"]
    assert "BERT" not in details and "HuBERT" not in details


class _Payload:
    """Pickles into a call of os.system; loading it must be refused, never executed."""

    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_check_voice_refuses_code_in_a_weight_file(tmp_path, aux_models, monkeypatch):
    folder = _make_voice(tmp_path / "v", aux_models)
    (folder / "tiny-e1.ckpt").unlink()
    torch.save({"weight": {"model.x": torch.zeros(1)}, "config": {"model": {}}, "boom": _Payload()},
               folder / "tiny-e1.ckpt")
    monkeypatch.chdir(tmp_path)
    report = check_voice(folder)
    details = {f.subject: f.detail for f in report.errors}
    assert "refusing to load" in details["GPT weights"] and "tiny-e1.ckpt" in details["GPT weights"]
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


# ------------------------------------------------------------------------------------ BERT


def test_bert_features_follow_word2ph(aux_models):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    bert_dir, _ = aux_models
    bert = BertFeatures(bert_dir)
    text, word2ph = "今天天气真好.", [2, 2, 2, 2, 2, 2, 1]
    feats = bert(text, word2ph)
    assert feats.shape == (BERT_DIM, 13) and feats.dtype == torch.float32
    # Independent computation straight from transformers: hidden layer -3, CLS/SEP dropped.
    tok = AutoTokenizer.from_pretrained(bert_dir, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(bert_dir, local_files_only=True).eval()
    with torch.no_grad():
        hidden = model(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states
    rows = hidden[-3][0, 1:-1]  # (7, 1024)
    assert len(hidden) == 4  # embeddings + 3 layers: -3 is layer 1, not the last layer
    expect = torch.cat([rows[i].repeat(n, 1) for i, n in enumerate(word2ph)]).T
    torch.testing.assert_close(feats, expect, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(feats[:, 0], feats[:, 2])  # different characters differ
    torch.testing.assert_close(feats[:, 0], feats[:, 1])  # one character, two phones
    zeros = run_features(bert, "en", "hello", None, 9)
    assert zeros.shape == (BERT_DIM, 9) and not zeros.any()
    with pytest.raises(SynthesisError, match="word2ph has 2 entries for 3 characters"):
        bert("你好.", [2, 2])


# ------------------------------------------------------------------------------------ reference audio


def test_reference_audio_paths(tmp_path):
    wav = _ref_wav()
    path = _write_clip(tmp_path / "ref.wav", wav)
    audio, rate = read_audio(path)
    assert rate == 32000 and audio.shape == (1, 128000)
    np.testing.assert_array_equal(audio[0], wav)  # values on the int16 grid survive the WAV
    w16 = reference_16k(audio, rate)
    assert w16.shape == (64000,) and w16.dtype == np.float32
    check_reference_length(w16, path)
    # 16 kHz version is a band-limited copy: its spectrum below 7 kHz matches the original's.
    spec = reference_for_spectrogram(audio, rate, 32000)
    np.testing.assert_array_equal(spec, wav[None])  # no resample, peak 0.6: untouched
    stereo = np.stack([audio[0] * 2.0, audio[0] * 1.6])  # peak 1.08 after averaging
    loud = reference_for_spectrogram(stereo, rate, 32000)
    np.testing.assert_allclose(np.abs(loud).max(), 1.0, atol=1e-6)  # /= min(2, peak)
    assert padded_prompt_wav(w16, 32000).shape == (64000 + 9600,)
    with pytest.raises(VoiceError, match="2.00 s; it must be 3–10 s"):
        check_reference_length(w16[:32000], path)
    with pytest.raises(VoiceError, match="10.50 s"):
        check_reference_length(np.zeros(168000, np.float32), path)
    up = reference_16k(audio[:, :44101], 44100)  # odd length: ceil rule like librosa
    assert up.shape == (16001,)


def test_hubert_features_shape(aux_models):
    _, hubert_dir = aux_models
    hubert = HubertFeatures(hubert_dir)
    feats = hubert(np.zeros(16000 * 3 + 9600, dtype=np.float32))
    assert feats.shape[:2] == (1, 768) and feats.shape[2] == (16000 * 3 + 9600 - 400) // 320 + 1  # 25 ms window, 20 ms hop


# ------------------------------------------------------------------------------------ engine parity


def _engine(folder: Path, **kw):
    from synth.engines.gpt_sovits.engine import GptSovitsEngine

    return GptSovitsEngine(folder, device="cpu", **kw)


def _golden(*parts: str) -> np.ndarray:
    return np.load(_fixtures().joinpath(*parts))


def _text_feats(ids, bert: np.ndarray, norm: str = "x"):
    from synth.engines.gpt_sovits.text import TextFeatures

    return TextFeatures(tuple(int(i) for i in ids), torch.from_numpy(bert), norm)


def test_engine_reference_path_matches_goldens(tmp_path, aux_models):
    """WAV on disk → spectrogram → cached ge → SoVITS decode, against the reference outputs."""
    two = _make_voice(tmp_path / "two", aux_models, text="", extra='\n[[reference]]\naudio = "ref2.wav"\n')
    _write_clip(two / "ref2.wav", _golden("sovits", "ref2_wav.npy")[0])
    engine = _engine(two)
    assert engine.sample_rate == 32000 and engine.prompt.reference_free
    spec = engine.prompt.specs[0].numpy()
    np.testing.assert_allclose(spec, _golden("sovits", "ref_spec.npy"), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(engine.prompt.specs[1].numpy(), _golden("sovits", "ref2_spec.npy"), rtol=1e-5, atol=1e-3)
    ge_each = _golden("sovits", "multi_ge_each.npy")  # (2, 1, 512, 1)
    np.testing.assert_allclose(engine.prompt.ge.numpy(), ge_each.mean(0), atol=1e-5)
    engine.noise_scale = 0.0
    codes = torch.from_numpy(_golden("sovits", "codes.npy"))[0, 0]
    text = _text_feats(_golden("sovits", "text_phone_ids.npy")[0], np.zeros((1024, 18), np.float32))
    np.testing.assert_allclose(engine._vocode(codes, text, 0), _golden("sovits", "multi_out.npy")[0, 0], atol=1e-4)

    one = _engine(_make_voice(tmp_path / "one", aux_models, text=""))
    one.noise_scale = 0.0
    np.testing.assert_allclose(one.prompt.ge.numpy(), _golden("sovits", "decode_ge.npy"), atol=1e-5)
    np.testing.assert_allclose(one._vocode(codes, text, 0), _golden("sovits", "decode_out.npy")[0, 0], atol=1e-4)
    pred = torch.from_numpy(_golden("gpt", "naive_rp1.35_pred.npy"))[0]
    np.testing.assert_allclose(one._vocode(pred, text, 0), _golden("sovits", "e2e_out.npy")[0, 0], atol=1e-4)
    one.settings = replace(one.settings, speed=1.25)
    np.testing.assert_allclose(one._vocode(codes, text, 0), _golden("sovits", "speed_out.npy")[0, 0], atol=1e-4)


def test_engine_gpt_batches_match_goldens(tmp_path, aux_models):
    """Prompt transcript + sentence, prompt tokens continued, greedy: the reference's batched tokens;
    a batch of two gives each sentence the tokens it gets alone (both stop by EOS or both by cap)."""
    from synth.engines.gpt_sovits.prompt import ReferencePrompt

    engine = _engine(_make_voice(tmp_path / "v", aux_models, text=""))
    g = _golden
    ref_feats = _text_feats(g("gpt", "all_phone_ids.npy")[0, :21], g("gpt", "bert_ref.npy"))
    engine.prompt = ReferencePrompt(
        semantic=torch.from_numpy(g("gpt", "prompt_semantic.npy"))[0], text=ref_feats,
        specs=engine.prompt.specs, ge=engine.prompt.ge,
    )
    engine.settings = replace(engine.settings, top_k=1, repetition_penalty=1.35)
    engine.early_stop_num = 40
    tgt = _text_feats(g("gpt", "all_phone_ids.npy")[0, 21:], g("gpt", "bert_tgt.npy"))
    tgt2 = _text_feats([158, 119, 127, 134, 3], g("gpt", "bert_tgt2.npy"))
    both = engine._semantic_tokens([tgt, tgt2], seed=0)
    assert both[0].tolist() == g("gpt", "batch2_rp1.35_pred0.npy").tolist()
    assert both[1].tolist() == g("gpt", "batch2_rp1.35_pred1.npy").tolist()
    alone = engine._semantic_tokens([tgt], seed=5)
    assert alone[0].tolist() == g("gpt", "batch1_rp1.35_pred0.npy").tolist() == both[0].tolist()


def test_engine_reference_free_gpt_matches_golden(tmp_path, aux_models):
    engine = _engine(_make_voice(tmp_path / "v", aux_models, text=""))
    assert engine.prompt.semantic is None and engine.prompt.text is None
    engine.settings = replace(engine.settings, top_k=1)
    engine.early_stop_num = 40
    tgt = _text_feats(_golden("gpt", "all_phone_ids.npy")[0, 21:], _golden("gpt", "bert_tgt.npy"))
    tokens = engine._semantic_tokens([tgt], seed=0)[0]
    assert tokens.tolist() == _golden("gpt", "naive_reffree_rp1.35_pred.npy")[0].tolist()


# ------------------------------------------------------------------------------------ engine end to end


@pytest.fixture(scope="module")
def voice_dir(tmp_path_factory, aux_models) -> Path:
    return _make_voice(tmp_path_factory.mktemp("voice") / "tiny", aux_models)


def _mixed() -> list:
    from ingest.segment import segment

    return segment("我们用 PyTorch 训练模型。你好，world！Speech synthesis is fun.", default="zh")


def test_engine_speaks_mixed_chinese_english(voice_dir):
    from synth.engine import Engine

    engine = _engine(voice_dir)
    assert isinstance(engine, Engine) and engine.name == "gpt-sovits" and engine.sample_rate == 32000
    assert engine.prompt.semantic is not None and engine.prompt.semantic.shape == (114,)  # (4 s + 0.6 s) / 40 ms
    sentences = _mixed()
    assert {r.lang for s in sentences for r in s.runs} == {"zh", "en"}
    feats = engine.sentence_features(sentences[0])
    assert feats is not None and feats.bert.shape == (1024, len(feats.phones))
    assert feats.bert.abs().sum(0).gt(0).sum() < len(feats.phones)  # the English run has zero columns
    clips = engine.synthesize(sentences, seed=3)
    assert len(clips) == len(sentences)
    for clip, sentence in zip(clips, sentences):
        assert clip.text == sentence.text and clip.sample_rate == 32000 and clip.audio.dtype == np.float32
        assert clip.duration >= 11 * 0.04 and np.isfinite(clip.audio).all() and np.abs(clip.audio).max() <= 1.0
    again = engine.synthesize(sentences, seed=3)
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(clips, again))  # reproducible
    other = engine.synthesize(sentences, seed=4)
    assert any(a.audio.shape != b.audio.shape or not np.array_equal(a.audio, b.audio) for a, b in zip(clips, other))


def test_cpu_engine_bounds_worker_memory(voice_dir, monkeypatch):
    """A CPU worker synthesizes a book's clips, each of a new length: the engine caps oneDNN's
    primitive cache when it loads (unless the user chose a capacity) and hands the vocoder's freed
    heap back after every clip (synth/heap.py; measured by bench/bench_worker_memory.py)."""
    import synth.engines.gpt_sovits.engine as engine_module
    from synth.heap import ONEDNN_CACHE_CAPACITY

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    engine = _engine(voice_dir)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")
    _engine(voice_dir)
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "7"  # the user's own setting stays
    trims = []
    monkeypatch.setattr(engine_module, "release_free_heap", lambda: trims.append(1))
    sentences = _mixed()
    engine.synthesize(sentences, seed=3)
    assert len(trims) == len(sentences)


def test_engine_batch_equals_one_by_one_when_sampling(voice_dir):
    """Default (sampling, top_k=15) settings: a sentence's clip is a function of the sentence and
    the seed alone, sample for sample, whichever sentences share its batch and in what order (the
    clip cache relies on this)."""
    from synth.engines.gpt_sovits.text import bucket_batches

    engine = _engine(voice_dir)
    assert engine.settings.top_k == 15 and engine.settings.batch_size > 1  # really sampling, batched
    a, b, c = _mixed()
    feats = [engine.sentence_features(s) for s in (a, b, c)]
    buckets = bucket_batches([len(f.norm_text) for f in feats], engine.settings.batch_size)
    assert [sorted(bucket) for bucket in buckets] == [[0, 1, 2]]  # all three share one batch
    together = engine.synthesize([a, b, c], seed=7)
    alone = [engine.synthesize([s], seed=7)[0] for s in (a, b, c)]
    for one, many in zip(alone, together):
        assert one.duration > 0
        np.testing.assert_array_equal(many.audio, one.audio)
    # another order inside the batch: same GPT tokens per sentence (SoVITS is per sentence anyway)
    tokens = [t.tolist() for t in engine._semantic_tokens(feats, seed=7)]
    reordered = [t.tolist() for t in engine._semantic_tokens([feats[2], feats[0], feats[1]], seed=7)]
    assert reordered == [tokens[2], tokens[0], tokens[1]]


def test_engine_seed_changes_every_sentences_tokens(voice_dir):
    engine = _engine(voice_dir)
    feats = [engine.sentence_features(s) for s in _mixed()]
    first, second = engine._semantic_tokens(feats, seed=1), engine._semantic_tokens(feats, seed=2)
    assert all(x.tolist() != y.tolist() for x, y in zip(first, second))
    assert [t.tolist() for t in engine._semantic_tokens(feats, seed=1)] == [t.tolist() for t in first]


def test_engine_batch_equals_one_by_one_when_greedy(voice_dir):
    """Greedy GPT (top_k=1) and per-sentence SoVITS noise: batching changes nothing."""
    engine = _engine(voice_dir, settings=replace(SamplingSettings(), top_k=1, batch_size=8))
    sentences = _mixed()
    together = engine.synthesize(sentences, seed=1)
    alone = [engine.synthesize([s], seed=1)[0] for s in sentences]
    for a, b in zip(together, alone):
        assert a.audio.shape == b.audio.shape
        np.testing.assert_allclose(a.audio, b.audio, atol=1e-5)


def test_engine_silent_sentence_and_fingerprint(voice_dir):
    from ingest.segment import Run, Sentence

    engine = _engine(voice_dir)
    clips = engine.synthesize([Sentence("……", (Run("……", "zh"),)), *_mixed()[:1]])
    assert clips[0].audio.shape == (0,) and clips[1].duration > 0
    fp = engine.fingerprint()
    assert fp.startswith("gpt-sovits-v2/") and fp == _engine(voice_dir).fingerprint()
    assert fp != _engine(voice_dir, settings=replace(SamplingSettings(), top_k=5)).fingerprint()


def test_bucket_batches_like_reference_to_batch():
    from synth.engines.gpt_sovits.text import bucket_batches

    # sorted 9,10,11,12 | 48,50,100: middle/mean = 1.05 and 0.757, both >= 0.75
    assert bucket_batches([10, 50, 12, 11, 48, 9, 100], 4) == [[5, 0, 3, 2], [4, 1, 6]]
    # 1,1,1,10: middle/mean 0.31 -> shrink to 1,1,1; the long one alone
    assert bucket_batches([1, 1, 1, 10], 4) == [[0, 1, 2], [3]]
    assert bucket_batches([], 8) == [] and bucket_batches([5], 8) == [[0]]


def test_sentence_edges_follow_reference_rules(voice_dir):
    from ingest.segment import Run, Sentence
    from synth.g2p import phones_to_ids

    engine = _engine(voice_dir)
    period = phones_to_ids(["."])[0]
    short = engine.sentence_features(Sentence("好", (Run("好", "zh"),)))
    # first clause < 4 characters -> leading mark; no final punctuation -> final mark
    assert short is not None and short.norm_text.startswith(".") and short.norm_text.endswith(".")
    assert short.phones[0] == period and short.phones[-1] == period
    long = engine.sentence_features(Sentence("今天天气真好", (Run("今天天气真好", "zh"),)))
    assert long is not None and not long.norm_text.startswith(".") and long.phones[-1] == period
    english = engine.sentence_features(Sentence("Hi", (Run("Hi", "en"),)))
    assert english is not None and english.phones[0] == period and not english.bert.any()
    assert engine.sentence_features(Sentence("……", (Run("……", "zh"),))) is None


def test_check_voice_reports_broken_aux_models(tmp_path, aux_models):
    bert_dir, hubert_dir = aux_models
    bad_bert = tmp_path / "bert"
    shutil.copytree(bert_dir, bad_bert)
    data = (bad_bert / "model.safetensors").read_bytes()
    (bad_bert / "model.safetensors").write_bytes(data[:1000])  # truncated download
    bad_hubert = tmp_path / "hubert"
    shutil.copytree(hubert_dir, bad_hubert)
    cfg = bad_hubert / "config.json"
    cfg.write_text(cfg.read_text().replace('"hidden_size": 768', '"hidden_size": 1024'))
    report = check_voice(_make_voice(tmp_path / "v", (bad_bert, bad_hubert)))
    details = {f.subject: f.detail for f in report.errors}
    assert set(details) == {"BERT", "HuBERT"}, report.lines()
    assert "cannot load BERT model" in details["BERT"] and str(bad_bert) in details["BERT"]
    assert "hidden size is 1024" in details["HuBERT"]


def test_engine_continuous_decoding_gives_the_same_clips(voice_dir):
    """[settings] continuous = true: two slots kept full across five sentences; every clip is the
    one the static engine makes (the sentences all stop at EOS here), and `batch_size` sends the
    worker four slots' worth of sentences at once."""
    from synth.engines.gpt_sovits import CONTINUOUS_FILL, _batch_size

    sentences = _mixed() + _mixed()[:2]
    static = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=2))
    flowing = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=2, continuous=True))
    assert static.fingerprint() != flowing.fingerprint()  # the setting is part of the voice's identity
    feats = [static.sentence_features(s) for s in sentences]
    assert all(len(t) < static.early_stop_num for t in static._semantic_tokens(feats, seed=5))  # EOS, not caps
    for a, b in zip(static.synthesize(sentences, seed=5), flowing.synthesize(sentences, seed=5)):
        np.testing.assert_array_equal(a.audio, b.audio)
    toml = voice_dir / "voice.toml"
    original = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(original + "\n[settings]\nbatch_size = 3\ncontinuous = true\n", encoding="utf-8")
        assert _batch_size(voice_dir) == 3 * CONTINUOUS_FILL
    finally:
        toml.write_text(original, encoding="utf-8")


def test_vocoding_beside_continuous_decoding(voice_dir, monkeypatch):
    """Finished sentences vocoded on a background thread while the others decode (the default on
    CUDA, forced here on a CPU): the same clips as vocoding inline, and a vocoder error still
    surfaces as the engine's one-line SynthesisError naming the sentence."""
    sentences = _mixed() + _mixed()[:2]
    inline = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=2, continuous=True))
    assert inline.overlap_vocoder is None  # automatic: inline on this CPU
    expected = inline.synthesize(sentences, seed=5)
    inline.overlap_vocoder = True
    threads = []
    real = inline._vocode

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(inline, "_vocode", recording)
    for a, b in zip(expected, inline.synthesize(sentences, seed=5), strict=True):
        np.testing.assert_allclose(b.audio, a.audio, rtol=0, atol=1e-5)
    assert threads and all(name.startswith("bookcast-vocoder") for name in threads)

    def broken(tokens, feats, seed):
        raise SynthesisError(f"SoVITS decoding failed for {feats.norm_text[:60]!r}: boom")

    monkeypatch.setattr(inline, "_vocode", broken)
    with pytest.raises(SynthesisError, match="SoVITS decoding failed .*boom"):
        inline.synthesize(sentences, seed=5)


def test_engine_cuda_graphs_setting(voice_dir):
    """[settings] cuda_graphs = true parses, leaves the voice's identity (and so the clip cache)
    alone — the static decoder gives every sentence the tokens of the dynamic one — and on a CPU
    the engine decodes exactly as without it."""

    toml = voice_dir / "voice.toml"
    original = toml.read_text(encoding="utf-8")
    try:
        toml.write_text(original + "\n[settings]\ncuda_graphs = true\n", encoding="utf-8")
        assert load_voice(voice_dir).settings.cuda_graphs is True
        toml.write_text(original + "\n[settings]\ncuda_graphs = 1\n", encoding="utf-8")
        with pytest.raises(VoiceError, match="cuda_graphs"):
            load_voice(voice_dir)
    finally:
        toml.write_text(original, encoding="utf-8")
    sentences = _mixed()[:3]
    plain = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=3))
    graphed = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=3, cuda_graphs=True))
    assert plain.fingerprint() == graphed.fingerprint()
    for a, b in zip(plain.synthesize(sentences, seed=2), graphed.synthesize(sentences, seed=2)):
        np.testing.assert_array_equal(a.audio, b.audio)


def test_out_of_memory_halves_the_batch_and_keeps_every_clip(voice_dir, monkeypatch, caplog):
    """A batch that does not fit the device (torch.OutOfMemoryError, raised here by the decoder for
    more than one row at once — a CPU cannot be made to run out on cue) is decoded in halves, then
    one by one: the same clips, a warning that says what to change; one sentence alone that does
    not fit is a SynthesisError naming it. Continuous decoding keeps what had finished and decodes
    the rest in half the slots."""
    import logging

    import torch

    import synth.engines.gpt_sovits.engine as module

    sentences = _mixed()
    static = _engine(voice_dir)
    expected = static.synthesize(sentences, seed=3)
    real_batch, real_continuous = module.decode_batch, module.decode_continuous
    widths = []

    def batch_fits_one(model, phones, *args, **kwargs):
        widths.append(len(phones))
        if len(phones) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real_batch(model, phones, *args, **kwargs)

    monkeypatch.setattr(module, "decode_batch", batch_fits_one)
    with caplog.at_level(logging.WARNING, logger=module.__name__):
        for a, b in zip(expected, static.synthesize(sentences, seed=3), strict=True):
            np.testing.assert_array_equal(b.audio, a.audio)
    assert widths == [3, 1, 2, 1, 1]  # 3 → 1 + 2, then 2 → 1 + 1
    assert "out of memory on cpu decoding 3 sentences at once; going on with 1 at a time" in caplog.text

    monkeypatch.setattr(module, "decode_batch", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("x")))
    with pytest.raises(SynthesisError, match=r"out of memory on cpu decoding one sentence of \d+ phones"):
        static.synthesize(sentences[:1], seed=3)

    slots_seen = []

    def continuous_one_then_full(model, phones, bert, prompt, *, slots, on_done, **kwargs):
        slots_seen.append((len(phones), slots))
        if slots > 1:  # the first sentence finishes, then the device runs out
            first = real_continuous(model, phones[:1], bert[:1], prompt, slots=1, on_done=on_done, **{
                k: (v[:1] if k == "seed" else v) for k, v in kwargs.items()})
            assert len(first) == 1
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return real_continuous(model, phones, bert, prompt, slots=slots, on_done=on_done, **kwargs)

    flowing = _engine(voice_dir, settings=replace(SamplingSettings(), batch_size=2, continuous=True))
    monkeypatch.setattr(module, "decode_continuous", continuous_one_then_full)
    for a, b in zip(expected, flowing.synthesize(sentences, seed=3), strict=True):
        np.testing.assert_array_equal(b.audio, a.audio)
    assert slots_seen == [(3, 2), (2, 1)]
