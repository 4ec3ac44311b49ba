"""Unit tests for the pieces the flow tests only reach end to end: the clip cache, the export key
(what makes a delivered chapter stale), chapter selection and the synthesis pool's worker restart."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from flows.make_cmd import parse_chapters
from flows.steps.export import export_key
from flows.steps.spoken import book_scripts
from ingest.errors import BookcastError
from ingest.model import Block, Book, BookMeta, Chapter
from ingest.segment import Run, Sentence
from mastering.presets import get_preset
from synth.cache import ClipCache, clip_key, encode_clip
from synth.engine import Clip
from synth.jobs import EngineSpec
from synth.pool import ProcessPool

SENTENCE = Sentence("A clip to keep.", (Run("A clip to keep.", "en"),))


def _clip_bytes(seconds: float = 0.5, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return encode_clip(Clip((0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, SENTENCE.text))


# ------------------------------------------------------------------------------------ clip cache

def test_cache_round_trip_and_has_reads_no_audio(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    key = clip_key(SENTENCE, "engine-1", 0)
    assert not cache.has(key) and cache.get(key) is None
    assert cache.put(key, _clip_bytes(), SENTENCE) == pytest.approx(0.5, abs=1e-3)
    assert cache.has(key) and cache.decodes == 0  # the sidecar answers; no audio decoded
    clip = cache.get(key)
    assert clip is not None and clip.sample_rate == 22050 and len(clip.audio) == 11025 and cache.decodes == 1


def test_cache_key_follows_text_engine_and_seed() -> None:
    other = Sentence("A clip to keep!", (Run("A clip to keep!", "en"),))
    keys = {clip_key(SENTENCE, "e1", 0), clip_key(other, "e1", 0), clip_key(SENTENCE, "e2", 0),
            clip_key(SENTENCE, "e1", 1)}
    assert len(keys) == 4 and clip_key(SENTENCE, "e1", 0) == clip_key(SENTENCE, "e1", 0)


def test_corrupt_audio_is_detected_on_read_and_removed(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    key = clip_key(SENTENCE, "engine-1", 0)
    cache.put(key, _clip_bytes(), SENTENCE)
    flac = next(tmp_path.glob("??/*.flac"))
    data = bytearray(flac.read_bytes())
    data[-10] ^= 0xFF  # same size: only the checksum can tell
    flac.write_bytes(bytes(data))
    assert cache.has(key)  # existence is cheap and does not verify ...
    assert cache.get(key) is None and not cache.has(key)  # ... reading does, and drops the entry


def test_truncated_audio_or_missing_sidecar_is_not_an_entry(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    a, b = clip_key(SENTENCE, "e", 0), clip_key(SENTENCE, "e", 1)
    cache.put(a, _clip_bytes(), SENTENCE)
    cache.put(b, _clip_bytes(), SENTENCE)
    flac_a = next(p for p in tmp_path.glob("??/*.flac") if p.stem == a)
    flac_a.write_bytes(flac_a.read_bytes()[:100])  # a crash mid-write of the audio
    next(p for p in tmp_path.glob("??/*.json") if p.stem == b).unlink()  # the sidecar never landed
    assert not cache.has(a) and not cache.has(b)


def test_stats_and_prune(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    keys = [clip_key(SENTENCE, "e", seed) for seed in range(3)]
    for key in keys:
        cache.put(key, _clip_bytes(), SENTENCE)
    stats = cache.stats()
    assert stats.entries == 3 and stats.audio_s == pytest.approx(1.5, abs=0.01) and stats.bytes > 0
    assert cache.prune(keys[:1]) == 2
    assert list(cache.keys()) == keys[:1] and cache.has(keys[0])


def test_clip_stats_measured_once_then_read_from_the_sidecar(tmp_path: Path) -> None:
    cache = ClipCache(tmp_path)
    key = clip_key(SENTENCE, "e", 0)
    cache.put(key, _clip_bytes(), SENTENCE)
    calls = []

    @dataclasses.dataclass
    class Stats:
        peak: float

        def to_dict(self) -> dict:
            return {"peak": self.peak}

    def measure(audio: np.ndarray, rate: int) -> Stats:
        calls.append(rate)
        return Stats(float(np.max(np.abs(audio))))

    first = cache.clip_stats(key, measure)
    assert first is not None and first["peak"] == pytest.approx(0.2, abs=1e-3)
    assert ClipCache(tmp_path).clip_stats(key, measure) == first and calls == [22050]


# ------------------------------------------------------------------------------------ export key

BOOK = Book(BookMeta("Keys", author="A. Author"), (
    Chapter("One", (Block("One", "heading"), Block("The first sentence. The second sentence."),)),
    Chapter("Two", (Block("Two", "heading"), Block("Another chapter."),)),
))


def _key(book: Book = BOOK, preset=None, lines=None, clip_keys=("k1", "k2", "k3")) -> str:
    preset = preset or get_preset("acx")
    lines = lines if lines is not None else book_scripts(book, "espeak", preset, [1])[1]
    return export_key(book, 1, len(book.chapters), lines, tuple(clip_keys), preset)


def test_export_key_is_stable() -> None:
    assert _key() == _key()


@pytest.mark.parametrize("change", ["preset", "preset_setting", "pause", "cover", "tag", "title", "clips"])
def test_every_input_of_a_chapter_file_changes_its_export_key(change: str) -> None:
    base = _key()
    acx = get_preset("acx")
    lines = book_scripts(BOOK, "espeak", acx, [1])[1]
    if change == "preset":
        changed = _key(preset=get_preset("podcast"))
    elif change == "preset_setting":
        changed = _key(preset=get_preset("acx", {"pause_paragraph_s": 1.2}))
    elif change == "pause":
        lines = [dataclasses.replace(lines[0], pause_s=3.0), *lines[1:]]
        changed = _key(lines=lines)
    elif change == "cover":
        changed = _key(dataclasses.replace(BOOK, meta=dataclasses.replace(BOOK.meta, cover=b"\x89PNG...",
                                                                           cover_mime="image/png")))
    elif change == "tag":
        changed = _key(dataclasses.replace(BOOK, meta=dataclasses.replace(BOOK.meta, author="B. Author")))
    elif change == "title":
        renamed = (dataclasses.replace(BOOK.chapters[0], title="One, renamed"), BOOK.chapters[1])
        changed = _key(dataclasses.replace(BOOK, chapters=renamed))
    else:
        changed = _key(clip_keys=("k1", "k2", "k4"))  # a re-take or an edited sentence
    assert changed != base


# ------------------------------------------------------------------------------- chapter selection

@pytest.mark.parametrize("spec,expected", [("3", [3]), ("3,7-9", [3, 7, 8, 9]), (" 2 , 4-4 ", [2, 4]),
                                           (None, None), ("", None)])
def test_chapter_selection(spec, expected) -> None:
    assert parse_chapters(spec) == expected


@pytest.mark.parametrize("spec", ["x", "3-", "0", "5-2", "1,,2", "-3"])
def test_bad_chapter_selection_is_one_clear_error(spec: str) -> None:
    with pytest.raises(BookcastError, match="--chapters"):
        parse_chapters(spec)


# ----------------------------------------------------------------------------- worker restarts

def _worker_pids(pool: ProcessPool) -> list[int]:
    return [p.pid for p in (pool._executor._processes or {}).values()]


def _kill_workers_during(pool: ProcessPool, future) -> None:
    import os
    import signal

    deadline = time.monotonic() + 60
    while not _worker_pids(pool) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in _worker_pids(pool):
        os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_is_replaced_and_its_batch_resubmitted() -> None:
    spec = EngineSpec("espeak")
    sentences = [Sentence(f"Sentence number {i}.", (Run(f"Sentence number {i}.", "en"),)) for i in range(4)]
    keys = [f"k{i}" for i in range(4)]
    pool = ProcessPool(1, [])
    try:
        future = pool.submit(spec, keys, sentences, 0)
        _kill_workers_during(pool, future)
        result = future.result(timeout=120)
        assert result.keys == tuple(keys) and len(result.flac) == 4
        assert pool.restarts.count == 1
    finally:
        pool.close()


def test_a_finished_batch_is_freed_without_the_cyclic_gc() -> None:
    """The main process must not keep batches' audio alive once they are stored: with the cyclic
    GC off (its full collections are rare in a long run), dropping the future frees the result."""
    import gc
    import weakref

    sentences = [Sentence(f"Sentence number {i}.", (Run(f"Sentence number {i}.", "en"),)) for i in range(2)]
    pool = ProcessPool(1, [])
    gc.disable()
    try:
        future = pool.submit(EngineSpec("espeak"), ["a", "b"], sentences, 0)
        ref = weakref.ref(future.result(timeout=120))
        del future
        deadline = time.monotonic() + 5  # the executor's thread lets go of its own future just after
        while ref() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ref() is None, gc.get_referrers(ref())
    finally:
        gc.enable()
        pool.close()


def test_workers_that_keep_dying_end_in_a_clear_error() -> None:
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPool(1, [])
    pool.restarts.limit = 0
    try:
        future = pool.submit(EngineSpec("espeak"), ["k"], [SENTENCE], 0)
        _kill_workers_during(pool, future)
        with pytest.raises(BrokenProcessPool, match=r"keep dying after 0 restarts \(last: worker process \d+ "
                                                    r"was killed by SIGKILL, often the out-of-memory killer\); "
                                                    r"fewer --workers need less memory"):
            future.result(timeout=120)
    finally:
        pool.close(now=True)


# ------------------------------------------------------------------------------------ project.toml

@pytest.mark.parametrize("toml,expected", [
    ('[book]\nsource = "b.md"\n[mastering]\npreset = "acx"\nmp3_quality = 3\n',
     "[mastering] has no setting 'mp3_quality'; preset settings go under [mastering.overrides]"),
    ('[book]\nsource = "b.md"\nsorce = "x"\n', "[book] has no setting 'sorce'; known: lexicon, source, title"),
])
def test_a_misplaced_setting_is_an_error_not_ignored(tmp_path: Path, toml: str, expected: str) -> None:
    from flows.steps.project import load_project

    (tmp_path / "b.md").write_text("# One\n\nText.\n", encoding="utf-8")
    (tmp_path / "project.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(BookcastError) as info:
        load_project(tmp_path)
    assert expected in str(info.value)


def test_preset_overrides_are_read(tmp_path: Path) -> None:
    from flows.steps.project import load_project

    (tmp_path / "b.md").write_text("# One\n\nText.\n", encoding="utf-8")
    (tmp_path / "project.toml").write_text('[book]\nsource = "b.md"\n[mastering.overrides]\nmp3_quality = 3\n',
                                           encoding="utf-8")
    assert get_preset("acx", load_project(tmp_path).preset_overrides).mp3_quality == 3


def test_manifest_assembled_from_entries_equals_a_full_dump(tmp_path: Path) -> None:
    """The manifest is rewritten after every chapter from per-chapter pieces serialised once; the
    file must be exactly what a full dump of the whole manifest would be."""
    import json

    from flows.steps.manifest import MANIFEST, ChapterRecord, ManifestWriter

    chapters = tuple(Chapter(f"Ch {i} «ü»\u2028", (Block("Text."),)) for i in range(1, 5))
    book = Book(BookMeta(title="T", author="A", language="en"), chapters)
    writer = ManifestWriter(tmp_path, book, {"book": {"title": "T"}, "preset": "acx"}, [1, 2, 3, 4])
    for i in (2, 1, 4):
        writer.record(ChapterRecord(index=i, title=f"Ch {i} «ü»\u2028", file=f"{i}.mp3", duration_s=1.5 * i,
                                    sentences=3, spans=[(0.0, 1.0, "line\nwith «quotes» \"and\" \u2028")],
                                    qc={"passed": True}, timing={"synthesis_s": 1.0}))
        on_disk = (tmp_path / MANIFEST).read_text(encoding="utf-8")
        assert on_disk == json.dumps(writer.snapshot(), ensure_ascii=False, indent=2) + "\n"
    assert json.loads(on_disk)["total"]["delivered"] == 3
    assert json.loads(on_disk)["chapters"][2]["status"] == "pending"
    writer.finish({})
    assert json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))["this_run"]["chapters"] == [1, 2, 4]


_KILLED_MID_RESULT = '''
import multiprocessing as mp, sys, time
from concurrent.futures import ProcessPoolExecutor
from synth.pool import shutdown

def big():
    return b"x" * (400 << 20)

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
    pool.submit(int).result()
    pool.submit(big)
    time.sleep(float(sys.argv[1]))  # the worker is sending its 400 MB result by now
    shutdown(pool, now=True)
'''


@pytest.mark.parametrize("delay", [1.0, 1.5])
def test_a_stop_that_kills_a_worker_mid_result_lets_the_process_exit(tmp_path: Path, delay: float) -> None:
    """A worker killed while sending a result left half a message in the pipe; the pool's reader
    waited for the rest forever, and so did the interpreter's exit (a stopped run stayed alive)."""
    import subprocess
    import sys

    script = tmp_path / "stop.py"
    script.write_text(_KILLED_MID_RESULT, encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(script), str(delay)], cwd=root, timeout=60, capture_output=True,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr[-500:]


def test_release_free_heap_hands_freed_memory_back() -> None:
    """What a synthesis worker does after each batch: freed heap blocks (1 MB buffers served from
    the heap, as after glibc's mmap threshold has risen) go back to the system. In a fresh process,
    so the suite's own heap does not blur the figure."""
    import subprocess
    import sys

    code = """
import ctypes
from synth.heap import release_free_heap
libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: 1 MB blocks from the heap
libc.mallopt(-1, 1 << 40)  # M_TRIM_THRESHOLD: free() alone never shrinks the heap
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024
blocks = [bytearray(1 << 20) for _ in range(300)]
keep = blocks[::50]  # a few live blocks scattered through the heap
del blocks
before = rss()
release_free_heap()
print(before, rss())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    before, after = map(int, out.stdout.split())
    assert before - after > 200, (before, after)  # ~290 MB freed; at least 200 MB handed back


def test_worker_setup_bounds_onednn_before_torch() -> None:
    """A pool worker's first act: hide or pin GPUs, size the thread pools and cap oneDNN's primitive
    cache — all before torch is imported, since oneDNN reads the cap once (synth/heap.py)."""
    import subprocess
    import sys

    code = """
import os, queue, sys
for var in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "OMP_NUM_THREADS"):
    os.environ.pop(var, None)
from synth.pool import _init_worker
devices = queue.Queue()
devices.put("")
_init_worker(devices, 3)
print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["OMP_NUM_THREADS"],
      repr(os.environ["CUDA_VISIBLE_DEVICES"]), "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    from synth.heap import ONEDNN_CACHE_CAPACITY

    assert out.stdout.split() == [str(ONEDNN_CACHE_CAPACITY), "3", "''", "False"]

