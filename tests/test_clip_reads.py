"""Each clip's audio is read once per run: synthesis checks the cache by its sidecar, clip QC judges
the stats the worker stored there, and only stitching decodes (and checksums) the audio."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from flows.steps.export import export
from flows.steps.review import review
from flows.steps.spoken import book_scripts
from flows.steps.synthesis import Synthesis, engine_spec, synthesize
from ingest.model import Block, Book, BookMeta, Chapter
from mastering.presets import get_preset
from synth.cache import ClipCache
from synth.pool import InlinePool

BOOK = Book(BookMeta("Reads", author="A. Author"), (
    Chapter("One", (Block("One", "heading"), Block("The first sentence. The second sentence, a longer one. "
                                                    "A third to make a rate. And a fourth. The fifth one."),)),
    Chapter("Two", (Block("Two", "heading"), Block("The first sentence. It comes back in chapter two."),)),
))


@pytest.fixture
def counted(monkeypatch) -> Counter:
    reads: Counter = Counter()
    original = ClipCache._verified

    def verified(self, key):
        reads[key] += 1
        return original(self, key)

    monkeypatch.setattr(ClipCache, "_verified", verified)
    return reads


def run_once(tmp: Path, force: bool) -> tuple[Synthesis, set[str]]:
    preset = get_preset("acx")
    pool = InlinePool()
    spec = engine_spec("espeak", None, None)
    synth = Synthesis(pool, spec, pool.fingerprint(spec), ClipCache(tmp / ".work" / "clips"))
    scripts = book_scripts(BOOK, "espeak", preset, [1, 2])
    used = set()
    for i, lines in scripts.items():
        clips = synthesize(synth, lines)
        checked = review(synth, lines, clips.keys)
        export(BOOK, i, 2, lines, synth.cache, checked.keys, preset, tmp, key="k" if force else "")
        used |= set(checked.keys)
    return synth, used


def test_each_clip_is_decoded_once_per_run(tmp_path: Path, counted: Counter) -> None:
    lines = sum(len(v) for v in book_scripts(BOOK, "espeak", get_preset("acx"), [1, 2]).values())
    synth, used = run_once(tmp_path, force=False)
    # Only stitching reads audio: one read per line it lays (a sentence spoken in both chapters is
    # one clip, read once by each chapter), none by the cache check or clip QC.
    assert set(counted) == used and sum(counted.values()) == lines == synth.cache.decodes
    assert counted.most_common(1)[0][1] == 2  # "The first sentence." in both chapters
    counted.clear()
    again, _ = run_once(tmp_path, force=True)  # all cached, every chapter exported again
    assert sum(counted.values()) == lines == again.cache.decodes


def test_clip_qc_judges_the_spoken_form(tmp_path: Path) -> None:
    """'(Copyright 1906 1907 1908.)' is short as written and long as spoken: judged by its written
    characters it looks far too slow (a real book's run reported '(Copyright, 1906, 1908.)' as an
    unfixable clip, before commas counted as pauses)."""
    from mastering.clipqc import ClipStats, flags_from_stats
    from synth.cache import ClipCache

    book = Book(BookMeta("Rate"), (Chapter("One", (Block(
        "The keeper climbed the narrow stairs. He watched the ships pass the rocks. The wind carried "
        "salt and rain. Someone counted the boats returning home. (Copyright 1906 1907 1908.) The lamp "
        "burned for a hundred years."),)),))
    pool = InlinePool()
    spec = engine_spec("espeak", None, None)
    synth = Synthesis(pool, spec, pool.fingerprint(spec), ClipCache(tmp_path / "clips"))
    lines = book_scripts(book, "espeak", None, [1])[1]
    outcome = review(synth, lines, synthesize(synth, lines).keys)
    assert outcome.unresolved == ()
    stats = [ClipStats.from_dict(synth.cache.meta(k)["stats"]) for k in outcome.keys]
    written = flags_from_stats(stats, [line.sentence.text for line in lines])
    assert [(lines[f.index].sentence.text, f.reason) for f in written] == [("(Copyright 1906 1907 1908.)", "too_slow")]
