"""proof.toml: what a producer decided while proofing a book (`bookcast studio`), kept in the project.

Per sentence: the take chosen (its seed follows from the take number), a text edit (what is spoken
instead; the book file is never modified and transcripts keep the book's words), and the pause after
it. `bookcast make`, `rerun` and `preview` apply the same choices through `book_scripts`, so a fresh
run reproduces what the studio delivered byte for byte, from the clip cache.

A choice names its sentence by chapter and line number (as `preview` and the studio count them) and
remembers the book's text there: when the book changes, a choice follows its sentence within the
chapter if that text occurs exactly once, and is otherwise reported and ignored, never applied to
another sentence.

    [[sentence]]
    chapter = 3
    line = 12
    source = "Call me Ishmael."
    take = 2
    text = "Call me Ishmael!"
    pause_s = 1.5
"""
from __future__ import annotations

import json
import logging
import math
import threading
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.errors import InputError
from ingest.script import Line
from ingest.segment import Sentence

log = logging.getLogger(__name__)

MAX_PAUSE_S = 30.0
_write_lock = threading.Lock()  # one writer per process (the studio's request threads)


@dataclass(frozen=True)
class Choice:
    chapter: int  # 1-based, as the book's chapters
    line: int  # 1-based position in the chapter's script (credits included)
    source: str  # the book's text of that sentence when the choice was made
    take: int | None = None  # 0: the first take; None: not chosen (clip QC decides)
    text: str | None = None  # spoken instead of the book's text
    pause_s: float | None = None  # pause after the sentence, replacing the preset's

    @property
    def empty(self) -> bool:
        return self.take is None and self.text is None and self.pause_s is None


@dataclass(frozen=True)
class Proof:
    path: Path
    choices: dict[tuple[int, int], Choice]

    def for_chapter(self, chapter: int) -> list[Choice]:
        return [c for (ch, _), c in sorted(self.choices.items()) if ch == chapter]


def proof_path(root: Path, source: Path) -> Path:
    """`proof.toml` in a project folder; `<book>.proof.toml` beside a bare book file."""
    return root / "proof.toml" if (root / "project.toml").is_file() else source.with_name(source.stem + ".proof.toml")


def load_proof(project) -> Proof:
    """The project's proof choices (none when it has no proof file). Raises InputError naming the
    file and the entry when it is not what bookcast writes."""
    return read_proof(proof_path(project.root, project.source))


def read_proof(path: Path) -> Proof:
    if not path.is_file():
        return Proof(path, {})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"invalid TOML: {exc}", path) from None
    entries = data.get("sentence", [])
    if not isinstance(entries, list):
        raise InputError("[[sentence]] entries expected", path)
    choices: dict[tuple[int, int], Choice] = {}
    for n, entry in enumerate(entries, 1):
        try:
            choice = _choice(entry)
        except (TypeError, ValueError) as exc:
            raise InputError(f"sentence entry {n}: {exc}", path) from None
        choices[(choice.chapter, choice.line)] = choice
    return Proof(path, choices)


def _choice(entry: object) -> Choice:
    if not isinstance(entry, dict):
        raise TypeError("not a table")
    unknown = set(entry) - {"chapter", "line", "source", "take", "text", "pause_s"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    chapter, line, take = entry.get("chapter"), entry.get("line"), entry.get("take")
    for name, value in (("chapter", chapter), ("line", line)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, not {value!r}")
    if take is not None and (isinstance(take, bool) or not isinstance(take, int) or not 0 <= take <= 1000):
        raise ValueError(f"take must be a whole number 0..1000, not {take!r}")
    text, pause = entry.get("text"), entry.get("pause_s")
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise ValueError("text must be non-empty text")
    if pause is not None:
        if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0 <= pause <= MAX_PAUSE_S:
            raise ValueError(f"pause_s must be a number of seconds 0..{MAX_PAUSE_S:g}, not {pause!r}")
        pause = float(pause)
    return Choice(chapter, line, str(entry.get("source", "")), take, text, pause)  # type: ignore[arg-type]


def save_choice(path: Path, choice: Choice) -> Proof:
    """Set (or, when empty, remove) one sentence's choice in the proof file, atomically; returns the
    proof as now on disk. Other entries are kept as they are."""
    from mastering.files import write_bytes_atomic

    with _write_lock:
        current = read_proof(path).choices
        current.pop((choice.chapter, choice.line), None)
        if not choice.empty:
            current[(choice.chapter, choice.line)] = choice
        write_bytes_atomic(path, render(current.values()).encode("utf-8"))
        return Proof(path, dict(current))


def render(choices) -> str:
    out = ["# Proofing choices (written by `bookcast studio`; `bookcast make` applies them).", ""]
    for c in sorted(choices, key=lambda c: (c.chapter, c.line)):
        out += ["[[sentence]]", f"chapter = {c.chapter}", f"line = {c.line}",
                f"source = {json.dumps(c.source, ensure_ascii=False)}"]
        if c.take is not None:
            out.append(f"take = {c.take}")
        if c.text is not None:
            out.append(f"text = {json.dumps(c.text, ensure_ascii=False)}")
        if c.pause_s is not None and math.isfinite(c.pause_s):
            out.append(f"pause_s = {round(c.pause_s, 3)!r}")
        out.append("")
    return "\n".join(out)


def apply_proof(index: int, lines: list[Line], proof: Proof, speak) -> tuple[list[Line], list[str]]:
    """Chapter `index`'s lines with the proof's choices applied; `speak(text)` turns an edited text
    into the runs to say (the front end, as for the book). Returns (lines, notes on choices that no
    longer match the book and were ignored)."""
    choices = proof.for_chapter(index)
    if not choices:
        return lines, []
    out, notes = list(lines), []
    for choice in choices:
        at = _locate(lines, choice)
        if at is None:
            notes.append(f"{proof.path.name}: chapter {index} line {choice.line} ({choice.source[:40]!r}) no longer "
                         f"matches the book; choice ignored")
            continue
        line = out[at]
        sentence = line.sentence
        if choice.text is not None:
            runs = tuple(r for s in speak(choice.text) for r in s.runs)
            if runs:
                sentence = Sentence(sentence.text, runs)
        out[at] = replace(line, sentence=sentence, take=choice.take if choice.take is not None else line.take,
                          pause_s=choice.pause_s if choice.pause_s is not None else line.pause_s)
    for note in notes:
        log.warning("%s", note)
    return out, notes


def _locate(lines: list[Line], choice: Choice) -> int | None:
    at = choice.line - 1
    if 0 <= at < len(lines) and lines[at].sentence.text == choice.source:
        return at
    same = [i for i, line in enumerate(lines) if line.sentence.text == choice.source]
    return same[0] if len(same) == 1 else None
