"""Presets, loudness measurements, limiter, stitching and MP3 export.

Golden values: BS.1770-4 Table 1/2 filter coefficients at 48 kHz, pyloudnorm as the integrated
loudness oracle, and analytic true peaks of band-limited sines.
"""
from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from mutagen.id3 import ID3

from ingest.errors import OutputError
from mastering import loudness as L
from mastering.errors import MasteringError
from mastering.export import decode, deliver_mp3, encode_mp3, write_mp3
from mastering.limiter import limit, limiter_gain
from mastering.master import gain_for, master
from mastering.meter import measure
from mastering.presets import PRESETS, get_preset
from mastering.stitch import assemble, trim_bounds
from mastering.synthetic import speech_like
from mastering.tags import ChapterMark, Tags

SR = 44100


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like(20.0, SR, seed=3)


# ---- presets -----------------------------------------------------------------------------------

def test_presets_have_the_store_numbers():
    acx, pod, bc = PRESETS["acx"], PRESETS["podcast"], PRESETS["broadcast"]
    assert (acx.rms_min_db, acx.rms_max_db, acx.sample_peak_ceiling_db) == (-23, -18, -3)
    assert acx.noise_floor_db == -60 and acx.mp3_bitrate_kbps == 192 and acx.sample_rate == 44100
    assert acx.channels == 1 and acx.max_minutes == 120 and acx.credits
    assert 0.5 <= acx.head_room_tone_s <= 1.0 and 1.0 <= acx.tail_room_tone_s <= 5.0
    assert (pod.target_lufs, pod.true_peak_ceiling_db, pod.mp3_bitrate_kbps) == (-19, -1, 128)
    assert (bc.target_lufs, bc.true_peak_ceiling_db) == (-23, -1)
    for p in PRESETS.values():
        assert p.pause_sentence_s < p.pause_paragraph_s < p.pause_section_s < p.pause_heading_s


def test_get_preset_overrides_and_errors():
    assert get_preset("podcast", {"channels": 2}).target_lufs == -16.0
    assert get_preset("podcast", {"channels": 2, "target_lufs": -18}).target_lufs == -18
    assert get_preset("acx", {"pause_sentence_s": 0.3}).pause_sentence_s == 0.3
    with pytest.raises(MasteringError, match="unknown preset"):
        get_preset("cd")
    with pytest.raises(MasteringError, match="unknown setting"):
        get_preset("acx", {"loudness": 3})
    with pytest.raises(MasteringError, match="pauses must grow"):
        get_preset("acx", {"pause_sentence_s": 5.0})
    # Values from YAML/JSON project files are checked and converted.
    p = get_preset("acx", {"mp3_bitrate_kbps": "128", "target_lufs": -21, "max_minutes": None,
                           "head_tail_range_s": [0.5, 1, 1, 5]})
    assert p.mp3_bitrate_kbps == 128 and p.target_lufs == -21.0 and p.max_minutes is None
    assert p.head_tail_range_s == (0.5, 1.0, 1.0, 5.0)
    for bad in ({"mp3_bitrate_kbps": 127.5}, {"credits": "yes"}, {"target_lufs": None},
                {"channels": 3}):
        with pytest.raises(MasteringError):
            get_preset("acx", bad)


# ---- loudness ----------------------------------------------------------------------------------

def test_k_weighting_matches_bs1770_table_at_48k():
    sos = L.k_weighting_sos(48000)
    shelf = [1.53512485958697, -2.69169618940638, 1.19839281085285, 1.0, -1.69065929318241,
             0.73248077421585]
    hp = [1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621]
    np.testing.assert_allclose(sos[0], shelf, atol=1e-7)
    np.testing.assert_allclose(sos[1], hp, atol=1e-7)


@pytest.mark.parametrize("sr", [44100, 48000, 24000])
def test_integrated_lufs_agrees_with_pyloudnorm(speech, sr):
    x = speech if sr == SR else L.as_2d(speech)[: sr * 15, 0]
    ours = L.integrated_lufs(x, sr)
    ref = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    assert abs(ours - ref) < 0.1
    stereo = np.stack([x, 0.5 * x], axis=1)
    ref2 = pyloudnorm.Meter(sr).integrated_loudness(stereo.astype(np.float64))
    assert abs(L.integrated_lufs(stereo, sr) - ref2) < 0.1


def test_1khz_sine_reads_minus_3_lufs_and_rms():
    # BS.1770: a 0 dBFS 997 Hz sine on one channel reads −3.01 LKFS; its RMS is −3.01 dBFS.
    t = np.arange(SR * 5) / SR
    s = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    assert L.integrated_lufs(s, SR) == pytest.approx(-3.01, abs=0.05)
    assert L.rms_db(s) == pytest.approx(-3.01, abs=0.01)
    assert L.integrated_lufs(np.zeros(SR), SR) == -math.inf


@pytest.mark.parametrize("freq,phase", [(SR / 4, math.pi / 4), (1000.0, 0.3), (7001.0, 1.0),
                                        (15000.0, 0.2)])
def test_true_peak_of_sines(freq, phase):
    t = np.arange(SR) / SR
    s = (np.sin(2 * np.pi * freq * t + phase) * np.hanning(SR)).astype(np.float32)
    assert L.true_peak_db(s, SR) == pytest.approx(0.0, abs=0.05)
    if freq == SR / 4:  # samples miss the crest by 45°: sample peak −3 dB, true peak 0 dB
        assert L.sample_peak_db(s) == pytest.approx(-3.01, abs=0.01)


def test_noise_floor_finds_the_quiet_stretch(speech):
    x = speech.copy()
    rng = np.random.default_rng(0)
    x += (rng.standard_normal(len(x)) * 10 ** (-65 / 20)).astype(np.float32)
    assert L.noise_floor_db(x, SR) == pytest.approx(-65, abs=1.0)
    m = measure(x, SR)
    assert m.duration_s == pytest.approx(20.0) and set(m.to_dict()) == {
        "duration_s", "lufs", "rms_db", "sample_peak_db", "true_peak_db", "noise_floor_db"}


# ---- limiter and master ------------------------------------------------------------------------

def test_limiter_holds_the_true_peak_ceiling_and_only_touches_peaks(speech):
    ceiling = L.true_peak_db(speech, SR) - 4.0
    y = limit(speech, SR, ceiling)
    assert L.true_peak_db(y, SR) <= ceiling + 1e-3
    assert L.rms_db(y) > L.rms_db(speech) - 0.8  # 4 dB off the peaks costs little RMS
    quiet = speech * 0.01
    np.testing.assert_array_equal(limit(quiet, SR, -6.0), quiet)  # below ceiling: identity


def _dense_limiter_gain(env, sr, ceiling_db, look_ms=5.0, release=40.0):
    """The limiter's definition written densely over every sample: the sparse one must equal it."""
    from scipy.ndimage import maximum_filter1d
    need = np.maximum(20 * np.log10(np.maximum(env, 1e-12)) - ceiling_db, 0)
    look, n = int(round(look_ms * 1e-3 * sr)), len(env)
    ahead = maximum_filter1d(need, size=look, mode="constant", origin=-(look // 2))
    ramp = release / sr * np.arange(n)
    rel = np.maximum.accumulate(ahead + ramp) - ramp
    cs = np.concatenate(([0], np.cumsum(rel)))
    k = np.arange(n)
    lo = np.maximum(k - look + 1, 0)
    return 10 ** (-((cs[k + 1] - cs[lo]) / (k + 1 - lo)) / 20)


def test_sparse_limiter_gain_equals_the_dense_definition():
    rng = np.random.default_rng(0)
    env = np.abs(rng.standard_normal(1_000_000)).astype(np.float32) * 0.2
    env[rng.integers(0, 1_000_000, 15)] = rng.uniform(0.5, 2.0, 15)
    env[:3] = 3.0  # a peak at the very start: no room for the attack
    idx, gain = limiter_gain(env, SR, -3.0)
    full = np.ones(len(env))
    full[idx] = gain
    np.testing.assert_allclose(full, _dense_limiter_gain(env, SR, -3.0), atol=1e-5)
    assert (env * full).max() <= 10 ** (-3 / 20) * (1 + 1e-5)
    assert len(idx) < len(env) // 2  # sparse: only the stretches around the peaks


@pytest.mark.parametrize("name", ["acx", "podcast", "broadcast"])
def test_master_meets_preset_before_encoding(speech, name):
    p = get_preset(name)
    y, m = master(speech * 0.2, SR, p)
    assert y.dtype == np.float32 and m.duration_s == pytest.approx(20.0, abs=1e-3)
    if p.rms_min_db is not None:
        assert p.rms_min_db + 0.9 <= m.rms_db <= p.rms_max_db - 0.9
    if p.lufs_tolerance_lu is not None:
        assert abs(m.lufs - p.target_lufs) <= 0.3
    assert m.true_peak_db <= p.peak_ceiling_db - p.limiter_margin_db + 1e-3


def test_streamed_plan_holds_the_ceiling_when_limiting_pushes_the_gain_up():
    """A loud click each second: limiting it costs loudness, so the gain search climbs far past its
    first envelope floor; the blocks enveloped at the higher floor must be redone, not read as
    silence (the limiter would miss the peaks they hold)."""
    from mastering.master import Mastering
    from mastering.signal import ArraySignal
    x = speech_like(30.0, SR, seed=5) * 0.05
    x[::SR] = 0.5
    p = get_preset("acx")
    with Mastering(ArraySignal(x, SR), p) as m:
        first = gain_for(m.input_lufs, m.input_rms_db, p)
        plan = m.plan(0.0, -3.5)
        lufs, rms = m.estimate(plan)
        y = np.concatenate(list(m.render(plan)))
    got = measure(y, SR)
    assert plan.gain_db > first + 5.0  # the search did climb
    assert got.true_peak_db <= plan.ceiling_db + 0.01
    assert p.rms_min_db + 0.9 <= got.rms_db <= p.rms_max_db - 0.9
    assert got.rms_db == pytest.approx(rms, abs=0.01) and got.lufs == pytest.approx(lufs, abs=0.01)


def test_master_rejects_silence():
    with pytest.raises(MasteringError, match="silent"):
        master(np.zeros(SR * 2, np.float32), SR, get_preset("podcast"))


# ---- stitch ------------------------------------------------------------------------------------

def test_trim_is_relative_and_keeps_a_margin():
    sr = 24000
    clip = np.zeros(sr, np.float32)
    clip[6000:18000] = 0.001 * np.sin(np.arange(12000) * 0.3)  # quiet take: −63 dBFS
    start, stop = trim_bounds(clip, sr, threshold_db=40, keep_s=0.015)
    assert abs(start - (6000 - 360)) <= 240 and abs(stop - (18000 + 360)) <= 240
    assert trim_bounds(np.zeros(100, np.float32), sr) == (0, 0)


def test_assemble_spans_pauses_and_room_tone(tmp_path):
    sr = 22050
    p = get_preset("acx")
    clips = []
    for k in range(4):
        c = np.zeros(int(sr * 1.5), np.float32)
        c[int(0.3 * sr): int(1.2 * sr)] = 0.3 * np.sin(np.arange(int(0.9 * sr)) * 0.05 * (k + 1))
        clips.append(c)
    pauses = [p.pause_sentence_s, p.pause_paragraph_s, p.pause_heading_s, 0.0]
    a = assemble(iter(clips), sr, pauses, p, work=tmp_path)  # a generator: clips consumed one by one
    assert a.sample_rate == p.sample_rate and a.audio.dtype == np.float32
    assert a.spans[0][0] == pytest.approx(p.head_room_tone_s, abs=1e-6)
    for (s0, e0), (s1, _), gap in zip(a.spans, a.spans[1:], pauses):
        assert s1 - e0 == pytest.approx(gap, abs=1 / p.sample_rate)
        assert e0 - s0 == pytest.approx(0.9 + 0.03, abs=0.011)  # trimmed clip + 2×15 ms margin
    assert a.duration - a.spans[-1][1] == pytest.approx(p.tail_room_tone_s, abs=1e-4)
    # Delivered, the pauses hold room tone at the preset's level, not digital zero.
    path, m = deliver_mp3(tmp_path / "a.mp3", a.signal, a.sample_rate, p, Tags(title="a"), room_tone=True,
                          work=tmp_path)
    y, rate = decode(path)
    e0, s1 = a.spans[0][1], a.spans[1][0]
    gap = y[int(e0 * rate) + 2000: int(s1 * rate) - 2000]
    assert 20 * np.log10(np.sqrt(np.mean(np.square(gap, dtype=np.float64)))) == pytest.approx(p.room_tone_db, abs=1.5)
    assert m.noise_floor_db == pytest.approx(p.room_tone_db, abs=1.5)
    a.close()
    assert [f.name for f in tmp_path.iterdir()] == ["a.mp3"]  # the spills are gone


def test_parts_of_an_assembly_share_its_spill(tmp_path):
    p = get_preset("acx")
    clips = [np.full(SR, 0.1 * (k + 1), np.float32) for k in range(5)]
    a = assemble(clips, SR, [1.0] * 5, p, work=tmp_path)
    part = a.part(1, 3)
    assert part.spans[0][0] == pytest.approx(p.head_room_tone_s, abs=1e-6)
    assert part.duration == pytest.approx(p.head_room_tone_s + (a.spans[2][1] - a.spans[1][0]) + p.tail_room_tone_s,
                                          abs=1e-4)
    s0, e0 = part.frames[0]
    np.testing.assert_array_equal(part.audio[s0:e0], a.audio[a.frames[1][0]:a.frames[1][1]])
    a.close()


def test_assemble_rejects_mismatched_pauses():
    with pytest.raises(MasteringError, match="one pause per clip"):
        assemble([np.ones(100, np.float32)], SR, [], get_preset("acx"))


# ---- export ------------------------------------------------------------------------------------

def test_encoder_level_loss_is_predicted_from_an_excerpt(speech):
    from mastering.export import decode_mp3_bytes, encoder_level_loss_db
    p = get_preset("podcast")
    y, m = master(speech, SR, p)
    loss = encoder_level_loss_db(speech, SR, p, excerpt_s=5.0)
    decoded, sr = decode_mp3_bytes(encode_mp3(y, SR, p))
    assert 0.1 < loss < 1.0  # MP3's quantiser loses level at 128 kbps
    assert m.lufs - L.integrated_lufs(decoded, sr) == pytest.approx(loss, abs=0.15)


def test_mp3_is_gapless_and_sample_aligned(tmp_path, speech):
    p = get_preset("podcast")
    x = speech[: SR * 5] * 0.3
    data = encode_mp3(x, SR, p)
    path = tmp_path / "a.mp3"
    path.write_bytes(data)
    y, sr = decode(path)
    assert sr == SR and len(y) == len(x)
    lag = np.argmax(np.correlate(y[20000:24000], x[20000 - 50:24000 + 50], "valid"))
    assert lag == 50  # no encoder delay left in the decoded stream


def test_write_mp3_tags(tmp_path, speech):
    p = get_preset("acx")
    tags = Tags(title="Chapter 1", album="The Book", artist="A. Author", narrator="Voice",
                track=1, track_total=12, year="2026", language="en",
                cover=b"\x89PNG\r\n\x1a\n" + bytes(64), cover_mime="image/png")
    path = write_mp3(tmp_path / "out" / "01.mp3", speech[: SR * 3] * 0.2, SR, p, tags,
                     chapters=[ChapterMark("Intro", 0.0, 1.0), ChapterMark("Body", 1.0, 3.0)])
    id3 = ID3(path)
    assert id3.version[:2] == (2, 3)
    assert str(id3["TIT2"]) == "Chapter 1" and str(id3["TALB"]) == "The Book"
    assert str(id3["TPE1"]) == "A. Author" and str(id3["TCOM"]) == "Voice"
    assert str(id3["TRCK"]) == "1/12" and str(id3["TLAN"]) == "eng"
    assert "synthetic" in str(id3.getall("COMM")[0])
    assert id3.getall("APIC")[0].mime == "image/png"
    chaps = {c.element_id: c for c in id3.getall("CHAP")}
    order = id3.getall("CTOC")[0].child_element_ids
    assert [(chaps[i].start_time, chaps[i].end_time) for i in order] == [(0, 1000), (1000, 3000)]
    assert [str(chaps[i].sub_frames["TIT2"]) for i in order] == ["Intro", "Body"]
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temp files left


def test_write_mp3_failure_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="file"):
        write_mp3(blocker / "a.mp3", np.zeros(SR, np.float32) + 0.1, SR, get_preset("acx"),
                  Tags(title="t"))
    with pytest.raises(MasteringError):
        write_mp3(tmp_path / "b.mp3", np.zeros(0, np.float32), SR, get_preset("acx"),
                  Tags(title="t"))
    assert sorted(q.name for q in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("name", ["acx", "podcast"])
def test_delivered_mp3_meets_every_rule_when_decoded(tmp_path, speech, name):
    p = get_preset(name)
    a = assemble([speech[: SR * 8], speech[SR * 8: SR * 16]], SR, [p.pause_paragraph_s, 0], p)
    path, m = deliver_mp3(tmp_path / "c.mp3", a.audio * 0.1, a.sample_rate, p, Tags(title="c"), room_tone=True)
    y, sr = decode(path)
    d = measure(y, sr)
    measured_tp = p.true_peak_ceiling_db is not None  # ACX checks sample peaks: no oversampling
    assert {**d.to_dict(), **({} if measured_tp else {"true_peak_db": None})} == m.to_dict()
    if p.sample_peak_ceiling_db is not None:
        assert d.sample_peak_db <= p.sample_peak_ceiling_db
    if p.true_peak_ceiling_db is not None:
        assert d.true_peak_db <= p.true_peak_ceiling_db
    if p.rms_min_db is not None:
        assert p.rms_min_db <= d.rms_db <= p.rms_max_db
    if p.lufs_tolerance_lu is not None:
        assert abs(d.lufs - p.target_lufs) <= p.lufs_tolerance_lu
    assert d.noise_floor_db <= p.noise_floor_db
    assert d.noise_floor_db > -100  # room tone, not digital silence
