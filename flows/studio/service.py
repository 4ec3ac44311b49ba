"""What the studio does, without the web: read a produced book, list its sentences as `make` speaks
them, and carry out a producer's fixes — re-takes, text edits, pronunciations, pauses — keeping every
choice in the project (proof.toml, the lexicon file) so that `bookcast make` reproduces it.

Synthesis goes through the same pool, worker and engine code as `make`, with one worker started when
the studio starts and kept warm (the voice is loaded once). Writes into the output folder (the clip
cache) happen under the folder's run lock, so a concurrent `bookcast make` and the studio never write
at once: whoever holds it first wins and the other is told so.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from flows.steps import export as ex
from flows.steps.locking import exclusive
from flows.steps.manifest import ChapterRecord, read_manifest
from flows.steps.project import default_lexicon, default_out_dir, load_project
from flows.steps.proof import Choice, load_proof, save_choice
from flows.steps.review import MAX_RETAKES, review
from flows.steps.spoken import book_lexicon, book_scripts
from flows.steps.synthesis import Synthesis, engine_spec, synthesize, synthesize_take
from ingest.errors import BookcastError
from ingest.reader import read_book
from ingest.script import Line
from mastering.presets import Preset, get_preset
from synth.cache import ClipCache
from synth.pool import PoolConfig, make_pool

log = logging.getLogger(__name__)

MAX_TAKES = 32  # takes listed (and made) per sentence


class StudioError(BookcastError):
    """A request the studio refuses; the message is shown on the page and nothing has changed."""


class Studio:
    """One produced book, open for proofing."""

    def __init__(self, project: str, out: str | None = None) -> None:
        self.project_arg = project
        self.proj = load_project(project)
        self.book = read_book(self.proj.source, self.proj.reading)
        self.out = Path(out) if out else (self.proj.out_dir or default_out_dir(self.book.slug))
        manifest = read_manifest(self.out)
        if not manifest.get("chapters"):
            raise BookcastError(f"nothing produced here yet; run `bookcast make {project}` first", self.out)
        self.preset_name = str(manifest.get("preset") or self.proj.preset)
        self.preset: Preset = get_preset(self.preset_name, self.proj.preset_overrides
                                         if self.preset_name == self.proj.preset else None)
        self.work = self.proj.work_dir or self.out / ".work"
        self.cache = ClipCache(self.work / "clips")
        self.lexicon_file = self.proj.lexicon or default_lexicon(self.proj.root, self.proj.source)
        self._lock = threading.RLock()  # one change at a time (browser tabs share the server)
        self._scripts: dict[int, list[Line]] = {}
        self._pictures: dict[str, tuple[str, dict]] = {}  # file → (its sha256, overview)
        self._pool = make_pool(PoolConfig(1), use_gpus=engine_spec(self.proj.engine, None, None).uses_gpu)
        self._starter = ThreadPoolExecutor(1, thread_name_prefix="studio-voice")
        self._synth: Future[Synthesis] = self._starter.submit(self._load_voice)
        self.reexporting = threading.Lock()

    # ---- the voice ---------------------------------------------------------------------------

    def _load_voice(self) -> Synthesis:
        """The run's Synthesis with the project's voice and current lexicon, loaded in the worker."""
        lexicon = book_lexicon(self.book, self.proj.lexicon, self.work)
        spec = engine_spec(self.proj.engine, self.proj.voice, lexicon, self.proj.voice_settings)
        return Synthesis(self._pool, spec, self._pool.fingerprint(spec), self.cache, self.proj.seed)

    @property
    def synth(self) -> Synthesis:
        try:
            return self._synth.result()
        except Exception as exc:  # whatever the worker raised while loading it
            raise StudioError(f"the voice is not available: {exc}") from None

    def close(self) -> None:
        self._starter.shutdown(wait=False, cancel_futures=True)
        self._pool.close(now=True)

    # ---- reading -----------------------------------------------------------------------------

    def _check(self, index: int) -> None:
        if not 1 <= index <= len(self.book.chapters):
            raise StudioError(f"there is no chapter {index} (the book has {len(self.book.chapters)})")

    def script(self, index: int) -> list[Line]:
        """Chapter `index`'s lines as `make` speaks them now (proof choices and lexicon applied)."""
        self._check(index)
        with self._lock:
            if index not in self._scripts:
                lexicon = self.synth.spec.lexicon
                self._scripts[index] = book_scripts(self.book, self.proj.engine, self.preset, [index],
                                                    Path(lexicon) if lexicon else None, load_proof(self.proj))[index]
            return self._scripts[index]

    def _line(self, index: int, line: int) -> Line:
        lines = self.script(index)
        if not 1 <= line <= len(lines):
            raise StudioError(f"chapter {index} has no sentence {line} (it has {len(lines)})")
        return lines[line - 1]

    def records(self) -> dict[int, ChapterRecord]:
        """The manifest's chapter records by index, read once per call (a long book's manifest is MBs)."""
        records = (ChapterRecord.from_dict(c) for c in read_manifest(self.out).get("chapters", []))
        return {r.index: r for r in records if r is not None}

    def record(self, index: int) -> ChapterRecord | None:
        return self.records().get(index)

    def chapters_files(self) -> list[list[str]]:
        """Per chapter, the files the manifest says were delivered (what the page may play)."""
        return [[f["file"] for f in r.delivered] for r in self.records().values() if r.status == "ok"]

    def picture(self, index: int) -> dict:
        """The chapter's delivered file as waveform and level columns (see mastering.overview),
        with its measures and the preset's rules."""
        from mastering.overview import overview

        self._check(index)
        rec = self.record(index)
        if rec is None or rec.status != "ok":
            raise StudioError(f"chapter {index} has not been delivered yet; re-export first")
        first = rec.delivered[0]
        cached = self._pictures.get(first["file"])
        if cached is None or cached[0] != first["sha256"]:
            weighted = self.preset.target_lufs is not None and self.preset.rms_min_db is None
            cached = self._pictures[first["file"]] = (first["sha256"], overview(self.out / first["file"], 1200,
                                                                                  weighted).to_dict())
        return {**cached[1], "file": first["file"], "measures": rec.measures, "rules": _rules(self.preset)}

    def chapters(self) -> list[dict]:
        out = []
        records = self.records()
        for i, chapter in enumerate(self.book.chapters, 1):
            rec = records.get(i)
            out.append({"index": i, "title": chapter.title, "status": rec.status if rec else "pending",
                        "duration_s": rec.duration_s if rec else 0.0,
                        "qc_passed": bool(rec and rec.qc.get("passed")), "flags": len(rec.clip_flags) if rec else 0})
        return out

    def delivered(self, lines: list[Line]) -> tuple[tuple[str, ...], list[dict]]:
        """The clip `make` delivers for each line and the clip-QC flags left: the same synthesis and
        review (re-takes included) as a run, served from the cache; missing clips (an edited
        sentence) are synthesized now."""
        synth = self.synth
        keys = tuple(synth.key(line.sentence, line.take) for line in lines)
        if all(self.cache.has(k) for k in keys):  # the usual case: nothing to write, no lock needed
            outcome = review(synth, lines, keys)
        else:
            with self._writing():
                outcome = review(synth, lines, synthesize(synth, lines).keys)
        return outcome.keys, list(outcome.unresolved)

    def chapter(self, index: int) -> dict:
        """Everything the chapter view shows."""
        lines = self.script(index)
        keys, flags = self.delivered(lines)
        rec = self.record(index)
        key = ex.export_key(self.book, index, len(self.book.chapters), lines, keys, self.preset)
        spans = rec.spans if rec and not rec.parts and len(rec.spans) == len(lines) else []
        pauses = ex.pauses_after(lines, self.preset)
        proof = load_proof(self.proj)
        rows = []
        for n, (line, clip) in enumerate(zip(lines, keys), 1):
            takes = self.takes(line)
            this = next((t for t in takes if t["key"] == clip), None)  # the delivered clip is one of its takes
            choice = proof.choices.get((index, n))
            rows.append({
                "line": n, "text": line.sentence.text, "spoken": line.sentence.spoken,
                "runs": [[r.lang, r.text] for r in line.sentence.runs], "key": clip,
                "duration_s": this["duration_s"] if this else None, "take": this["take"] if this else None,
                "takes": takes, "chosen": line.take, "pause_s": round(pauses[n - 1], 3),
                "pause_set": choice is not None and choice.pause_s is not None,
                "edited": choice.text if choice else None,
                "flags": [f for f in flags if f["index"] == n - 1],
                "span": spans[n - 1][:2] if spans else None})
        files = [p["file"] for p in rec.delivered] if rec and rec.status == "ok" else []
        return {"index": index, "title": self.book.chapters[index - 1].title, "sentences": rows,
                "files": files, "measures": rec.measures if rec else {}, "qc": rec.qc if rec else {},
                "changed": rec is None or rec.export_key != key, "preset": self.preset_name,
                "rules": _rules(self.preset)}

    def takes(self, line: Line) -> list[dict]:
        """The takes of this sentence in the cache: take number (0 first), clip key, duration.
        Clip QC makes takes 1..MAX_RETAKES only as needed; the studio numbers its own after the
        highest, so past those the takes run without gaps."""
        out = []
        for t in range(MAX_TAKES):
            key = self.synth.key(line.sentence, t)
            meta = self.cache.meta(key)
            if meta is not None:
                out.append({"take": t, "key": key, "duration_s": meta.get("duration_s")})
            elif t > MAX_RETAKES:
                break
        return out

    # ---- fixing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's change lock, then the output folder's run lock (Busy when a run holds it)."""
        with self._lock, exclusive(self.work, "bookcast run"):
            yield

    def retake(self, index: int, line_no: int) -> dict:
        """A new take of one sentence (the next take number, a new seed); not chosen yet."""
        line = self._line(index, line_no)
        synth = self.synth
        have = [t["take"] for t in self.takes(line)]
        take = (max(have) + 1) if have else 0
        if take >= MAX_TAKES:
            raise StudioError(f"sentence {line_no} already has {MAX_TAKES} takes; choose one")
        with self._writing():
            key = synthesize_take(synth, line.sentence, take, take=take)
        return {"take": take, "key": key, "takes": self.takes(line)}

    def choose(self, index: int, line_no: int, take: int | None) -> dict:
        line = self._line(index, line_no)
        if take is not None and take not in [t["take"] for t in self.takes(line)]:
            raise StudioError(f"sentence {line_no} has no take {take}; make it first")
        return self._set(index, line_no, take=take)

    def edit(self, index: int, line_no: int, text: str | None) -> dict:
        """Speak `text` instead of the book's words (None or empty: back to the book)."""
        text = " ".join(text.split()) if text else None
        if text and len(text) > 2000:
            raise StudioError("an edited sentence is limited to 2000 characters")
        return self._set(index, line_no, text=text or None)

    def pause(self, index: int, line_no: int, seconds: float | None) -> dict:
        from flows.steps.proof import MAX_PAUSE_S

        if seconds is not None and not 0.0 <= seconds <= MAX_PAUSE_S:
            raise StudioError(f"a pause is 0 to {MAX_PAUSE_S:g} seconds, not {seconds:g}")
        return self._set(index, line_no, pause_s=seconds)

    def _set(self, index: int, line_no: int, **change) -> dict:
        self._line(index, line_no)
        with self._lock:
            proof = load_proof(self.proj)
            base = self.script_without_proof(index)[line_no - 1]
            old = proof.choices.get((index, line_no)) or Choice(index, line_no, base.sentence.text)
            save_choice(proof.path, replace(old, source=base.sentence.text, **change))
            self._scripts.pop(index, None)
        return self.chapter(index)

    def script_without_proof(self, index: int) -> list[Line]:
        lexicon = self.synth.spec.lexicon
        return book_scripts(self.book, self.proj.engine, self.preset, [index], Path(lexicon) if lexicon else None)[index]

    def containing(self, word: str) -> list[dict]:
        """Every sentence of the book a lexicon entry for `word` would change, before adding it."""
        from synth.g2p.lexicon import Lexicon

        probe = Lexicon(en={word.lower(): ("AH0",)}) if word.isascii() else Lexicon(zh={word: ("a1",) * len(word)})
        found = []
        for i in range(1, len(self.book.chapters) + 1):
            for n, line in enumerate(self.script(i), 1):
                if probe.entries_in([r.text for r in line.sentence.runs]):
                    found.append({"chapter": i, "line": n, "text": line.sentence.text})
        return found

    def pronounce(self, word: str, pronunciation: str) -> dict:
        """Add `word` → `pronunciation` to the project's lexicon and re-synthesize every sentence that
        contains it (their clip keys change; no other sentence's does)."""
        from synth.g2p.lexicon import add_entry

        word = word.strip()
        if not word:
            raise StudioError("which word?")
        with self._writing():
            add_entry(self.lexicon_file, word, pronunciation)
            self.proj = load_project(self.project_arg)  # a new default lexicon file is now the project's
            self._synth = self._starter.submit(self._load_voice)
            self._scripts.clear()
            affected = self.containing(word)
            chapters = sorted({a["chapter"] for a in affected})
            for i in chapters:
                synthesize(self.synth, self.script(i))
        return {"word": word, "sentences": affected, "chapters": chapters, "lexicon": str(self.lexicon_file)}

    def reexport(self) -> dict:
        """`bookcast make` on the project and folder: it re-masters exactly the chapters whose
        inputs changed (clips, pauses) and keeps the others; returns its exit status and last line."""
        import subprocess
        import sys

        if not self.reexporting.acquire(blocking=False):
            raise StudioError("a re-export is already running")
        try:
            cmd = [sys.executable, "-m", "flows.cli", "make", self.project_arg, "--out", str(self.out)]
            if self.preset_name != self.proj.preset:
                cmd += ["--preset", self.preset_name]
            done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        finally:
            self.reexporting.release()
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("bookcast: error")]
        with self._lock:
            self._scripts.clear()
        return {"status": done.returncode, "message": (errors or lines or ["done"])[-1],
                "chapters": self.chapters()}


def _rules(preset: Preset) -> dict:
    """The preset's level rules, for the chapter picture."""
    return {"rms_min_db": preset.rms_min_db, "rms_max_db": preset.rms_max_db,
            "target_lufs": preset.target_lufs, "lufs_tolerance_lu": preset.lufs_tolerance_lu,
            "sample_peak_ceiling_db": preset.sample_peak_ceiling_db,
            "true_peak_ceiling_db": preset.true_peak_ceiling_db}
