"""The clip cache: every synthesized sentence stored content-addressed under the work folder.

The key hashes everything that changes the sound — the normalised runs (language + text), the voice
fingerprint (file contents), engine settings and the seed — so a rerun re-synthesizes only what is
missing or changed, and editing one sentence re-synthesizes one sentence. Audio is FLAC (24-bit,
lossless for the quantised clip) beside a JSON sidecar; entries are written atomically and verified
(sha256 of the FLAC) when the audio is read, so a crash or a corrupted file costs a re-synthesis,
never bad audio. Only the flow process writes the cache; workers return encoded clips.

The sidecar also carries what clip QC needs (duration, speech length, silence, clipping), measured
by the worker, so a run reads each clip's audio once: when its chapter is stitched. `has` only
looks at the sidecar and the FLAC's size; `decodes` counts the audio reads.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import soundfile as sf

from ingest.errors import OutputError
from ingest.segment import Sentence
from synth.engine import Clip

log = logging.getLogger(__name__)

_SCALE = float(1 << 23)


def clip_key(sentence: Sentence, engine_fingerprint: str, seed: int, lexicon: tuple[str, ...] = ()) -> str:
    """Content address of one sentence's audio; independent of its chapter and position.
    `lexicon`: the pronunciation entries that apply to this sentence (`Lexicon.entries_in`), so a
    lexicon edit changes only the keys of the sentences containing the word."""
    fields: dict = {"runs": [[r.lang, r.text] for r in sentence.runs], "engine": engine_fingerprint, "seed": seed}
    if lexicon:
        fields["lexicon"] = list(lexicon)
    payload = json.dumps(fields, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def quantize(audio: np.ndarray) -> np.ndarray:
    """Round to the 24-bit grid FLAC stores, so fresh and cached clips are the same numbers."""
    return (np.round(np.clip(audio, -1.0, 1.0 - 1.0 / _SCALE) * _SCALE) / _SCALE).astype(np.float32)


def encode_clip(clip: Clip) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, quantize(clip.audio), clip.sample_rate, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


def decode_clip(data: bytes, text: str = "") -> Clip:
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return Clip(audio=audio, sample_rate=int(rate), text=text)


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    audio_s: float


class ClipCache:
    """Folder layout: <root>/<key[:2]>/<key>.flac and <key>.json."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.decodes = 0  # clips decoded through this object (each should be once per run)

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.flac", folder / f"{key}.json"

    def _verified(self, key: str) -> tuple[bytes, dict] | None:
        """(FLAC bytes, sidecar) if the entry is complete and its checksum matches; a corrupt entry
        is removed so it gets synthesized again."""
        flac, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            data = flac.read_bytes()
        except (OSError, ValueError):
            return None
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            log.warning("clip cache: %s is corrupt; it will be synthesized again", flac)
            self.remove(key)
            return None
        return data, meta

    def meta(self, key: str) -> dict | None:
        """The sidecar of a complete entry (its FLAC present with the recorded size), or None.
        Cheap: no audio is read; the checksum is verified when the audio is (`get`)."""
        flac, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            size = flac.stat().st_size
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("bytes", size) != size:
            return None
        return meta

    def has(self, key: str) -> bool:
        """True if a complete clip is stored for `key` (see `meta`)."""
        return self.meta(key) is not None

    def get(self, key: str) -> Clip | None:
        """The cached clip, or None if absent or corrupt (a corrupt entry is removed)."""
        entry = self._verified(key)
        if entry is None:
            return None
        self.decodes += 1
        return decode_clip(entry[0], entry[1].get("text", ""))

    def flac(self, key: str) -> bytes | None:
        """The stored FLAC bytes of `key` (checksum verified), or None: for players that take FLAC."""
        entry = self._verified(key)
        return entry[0] if entry else None

    def clip_stats(self, key: str, measure: Callable[[np.ndarray, int], object]) -> dict | None:
        """The clip-QC stats of `key` from its sidecar; entries written before the sidecar carried
        them are measured once (`measure(audio, rate).to_dict()`) and the sidecar updated."""
        meta = self.meta(key)
        if meta is None:
            return None
        if "stats" not in meta:
            clip = self.get(key)
            if clip is None:
                return None
            meta["stats"] = measure(clip.audio, clip.sample_rate).to_dict()  # type: ignore[attr-defined]
            try:
                write_atomic(self._paths(key)[1], json.dumps(meta, ensure_ascii=False).encode())
            except OSError:
                pass  # a read-only cache still answers
        return meta["stats"]

    def put(self, key: str, data: bytes, sentence: Sentence, extra: dict | None = None) -> float:
        """Store encoded FLAC `data` for `key` (audio first, sidecar last: the sidecar marks it done);
        returns the clip's duration in seconds."""
        flac, meta_path = self._paths(key)
        info = sf.info(io.BytesIO(data))
        meta = {"key": key, "text": sentence.text, "runs": [[r.lang, r.text] for r in sentence.runs],
                "sample_rate": info.samplerate, "duration_s": round(info.duration, 4),
                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "created": round(time.time(), 3),
                **(extra or {})}
        try:
            flac.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(flac, data)
            write_atomic(meta_path, json.dumps(meta, ensure_ascii=False).encode())
        except OSError as exc:
            raise OutputError(f"cannot write the clip cache ({exc.strerror or exc})", flac) from exc
        return float(info.duration)

    def remove(self, key: str) -> None:
        for path in self._paths(key):
            path.unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        if self.root.exists():
            for meta in self.root.glob("??/*.json"):
                yield meta.stem

    def stats(self) -> CacheStats:
        entries, size, audio = 0, 0, 0.0
        for key in self.keys():
            flac, meta = self._paths(key)
            try:
                size += flac.stat().st_size + meta.stat().st_size
                audio += float(json.loads(meta.read_text(encoding="utf-8")).get("duration_s", 0.0))
                entries += 1
            except (OSError, ValueError):
                continue
        return CacheStats(entries, size, audio)

    def prune(self, keep: Iterable[str]) -> int:
        """Remove every entry whose key is not in `keep`; returns how many were removed."""
        wanted = set(keep)
        removed = 0
        for key in list(self.keys()):
            if key not in wanted:
                self.remove(key)
                removed += 1
        for stray in self.root.glob("??/*.flac") if self.root.exists() else []:
            if not stray.with_suffix(".json").exists():  # audio whose sidecar never landed
                stray.unlink(missing_ok=True)
        return removed


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, then rename it over `path`: a reader (or a crash)
    never sees half a file. Raises OSError."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
