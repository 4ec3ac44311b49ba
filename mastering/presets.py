"""Delivery presets: every number a store or app checks, in one place.

A preset is the contract a delivered file must meet (loudness window, peak ceilings, noise floor,
room tone, pauses, encoding). Mastering aims inside it with margins; QC checks the decoded file
against the same numbers, so the two can never disagree about what "passing" means.

Sources for the numbers:
- ACX Audio Submission Requirements: RMS −23..−18 dB (unweighted), peaks ≤ −3 dBFS, noise floor
  ≤ −60 dB RMS, 0.5–1 s room tone at the head and 1–5 s at the tail, 192 kbps CBR MP3 at 44.1 kHz,
  ≤ 120 minutes per file, one chapter per file, opening and closing credits.
- Podcast apps (Apple Podcasts / AES TD1004 practice): −16 LUFS for stereo, −19 LUFS for mono,
  ±1 LU, true peak ≤ −1 dBTP.
- EBU R128: −23 LUFS ±1 LU (live tolerance is wider; we hold files to ±1), true peak ≤ −1 dBTP.
- Apple Books (Apple's audiobook package specification, help.apple.com/itc/audiobooksspec, and the
  Apple Books asset guide): AAC at 256 kbps in an M4B/M4A, chapter marks, no track longer than
  23 hours and no chapter split across tracks. Apple states no loudness window: we master to the
  ACX levels (a store-neutral audiobook level) and hold the true peak under −1 dBTP for the AAC.
- Google Play Books (Partner Center help, "Audiobook file formats", support.google.com/books/partner/
  answer/3424254, and answer/7626222): MP3 (CBR preferred) ≥ 128 kbps mono or ≥ 256 kbps stereo, or
  FLAC 16-bit at ≥ 44.1 kHz; start and end every file with silence; a book of 5 minutes to 100 hours.
  No loudness window either: ACX levels again.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, Mapping

from mastering.errors import MasteringError

PauseKind = Literal["sentence", "paragraph", "section_break", "heading", "line"]


@dataclass(frozen=True)
class Preset:
    """What a delivered file must meet, and the silence design used to build it.

    Ceilings set to None are not checked. Levels are dB relative to full scale; `rms_*` is the
    plain (unweighted) RMS over the whole file, which is what ACX's checker measures (not LUFS).
    """

    name: str
    target_lufs: float  # integrated loudness aimed at for the output's channel count
    lufs_tolerance_lu: float | None = 1.0  # None: LUFS is a steering target only, not a rule
    rms_min_db: float | None = None
    rms_max_db: float | None = None
    sample_peak_ceiling_db: float | None = None  # dBFS
    true_peak_ceiling_db: float | None = None  # dBTP (BS.1770-4 Annex 2)
    noise_floor_db: float | None = None  # maximum allowed RMS of the quietest stretch
    require_room_tone: bool = False  # QC fails digital silence (noise floor under −90 dBFS)
    room_tone_db: float = -72.0  # RMS of the noise laid into pauses before mastering gain
    head_room_tone_s: float = 0.5
    tail_room_tone_s: float = 1.0
    head_tail_range_s: tuple[float, float, float, float] | None = None  # head min,max, tail min,max
    trim_threshold_db: float = 40.0  # clip edges quieter than this below the clip's loudest frame
    trim_keep_ms: float = 15.0  # margin kept outside the trimmed edges
    pause_sentence_s: float = 0.45
    pause_line_s: float = 0.35  # after a line of verse (the stanza's last line pauses as a paragraph)
    pause_paragraph_s: float = 0.9
    pause_section_s: float = 1.6
    pause_heading_s: float = 2.0
    mp3_bitrate_kbps: int = 128
    aac_bitrate_kbps: int = 64  # whole-book M4B; spoken word needs no more in mono
    # LAME -q, 0 best .. 9 fastest. 7 is LAME's "fast, ok quality": on our speech at 192 kbps mono
    # it decodes to the same waveform error as 2, 3 and 5 (30.4 dB SNR on a 3-minute chapter
    # excerpt) and encodes at 294x real time per core against 210x at 5 and 94x at 2 — LAME is a
    # third of the CPU a book costs. Set `mp3_quality` under [mastering.overrides] for another.
    mp3_quality: int = 7
    sample_rate: int = 44100
    channels: int = 1
    max_minutes: float | None = None  # longer chapters are split at a paragraph boundary
    credits: bool = False  # opening/closing credits spoken from the book's metadata
    # Store rules on the delivered files (None / empty: not checked). MP3: at least (mono, stereo)
    # kbps instead of exactly `mp3_bitrate_kbps` CBR; M4B: AAC at ≥ aac_min_kbps with chapter marks;
    # FLAC/WAV: 16-bit at ≥ 44.1 kHz accepted; the book's total length in minutes (qc on a folder).
    mp3_min_kbps: tuple[float, float] | None = None
    aac_min_kbps: int | None = None
    lossless_ok: bool = False
    book_minutes: tuple[float, float] | None = None
    book_files: tuple[str, ...] = ()  # whole-book files this preset delivers ("m4b"), whatever the project says
    book_file_max_hours: float | None = None  # a whole-book M4B longer than this is cut between chapters
    limiter_margin_db: float = 0.5  # aim this far under the ceiling before encoding
    limiter_lookahead_ms: float = 5.0
    limiter_release_db_per_s: float = 40.0

    def __post_init__(self) -> None:
        pauses = (self.pause_sentence_s, self.pause_paragraph_s, self.pause_section_s,
                  self.pause_heading_s)
        if any(p < 0 for p in pauses):
            raise MasteringError(f"preset {self.name!r}: pauses must not be negative")
        if not (self.pause_sentence_s <= self.pause_paragraph_s <= self.pause_section_s
                <= self.pause_heading_s):
            raise MasteringError(
                f"preset {self.name!r}: pauses must grow sentence ≤ paragraph ≤ section ≤ heading")
        if self.channels not in (1, 2):
            raise MasteringError(
                f"preset {self.name!r}: channels must be 1 or 2, not {self.channels}")
        if self.sample_rate not in (32000, 44100, 48000):
            raise MasteringError(
                f"preset {self.name!r}: MP3 sample rate must be 32000, 44100 or 48000")
        if (self.rms_min_db is None) != (self.rms_max_db is None):
            raise MasteringError(f"preset {self.name!r}: give both rms_min_db and rms_max_db")
        if (self.rms_min_db is not None and self.rms_max_db is not None
                and self.rms_min_db >= self.rms_max_db):
            raise MasteringError(f"preset {self.name!r}: rms_min_db must be below rms_max_db")
        if self.head_room_tone_s < 0 or self.tail_room_tone_s < 0:
            raise MasteringError(f"preset {self.name!r}: room tone lengths must not be negative")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise MasteringError(f"preset {self.name!r}: max_minutes must be positive")

    def pause_for(self, kind: PauseKind) -> float:
        """Seconds of room tone after a sentence that ends a unit of `kind`."""
        try:
            return {"sentence": self.pause_sentence_s, "line": self.pause_line_s, "paragraph": self.pause_paragraph_s,
                    "section_break": self.pause_section_s, "heading": self.pause_heading_s}[kind]
        except KeyError:
            raise MasteringError(f"unknown pause kind {kind!r}") from None

    @property
    def peak_ceiling_db(self) -> float | None:
        """The tightest peak ceiling; the limiter aims under it on the true-peak envelope, which
        bounds sample peaks too (a true peak is never below the sample peak)."""
        ceilings = [c for c in (self.sample_peak_ceiling_db, self.true_peak_ceiling_db)
                    if c is not None]
        return min(ceilings) if ceilings else None


PRESETS: dict[str, Preset] = {
    # ACX measures unweighted RMS. Speech with pauses at −20 LUFS integrated lands around −21 dB
    # RMS; mastering steers into the middle of the RMS window whatever the LUFS says.
    "acx": Preset(
        name="acx", target_lufs=-20.0, lufs_tolerance_lu=None,
        rms_min_db=-23.0, rms_max_db=-18.0, sample_peak_ceiling_db=-3.0,
        noise_floor_db=-60.0, require_room_tone=True, room_tone_db=-72.0,
        head_room_tone_s=0.75, tail_room_tone_s=2.5,
        head_tail_range_s=(0.5, 1.0, 1.0, 5.0),
        mp3_bitrate_kbps=192, sample_rate=44100, channels=1,
        max_minutes=120.0, credits=True),
    # Mono at −19 LUFS plays as loud as stereo at −16 (a mono file is heard on both speakers).
    "podcast": Preset(
        name="podcast", target_lufs=-19.0, lufs_tolerance_lu=1.0, true_peak_ceiling_db=-1.0,
        noise_floor_db=-55.0, room_tone_db=-72.0, head_room_tone_s=0.3, tail_room_tone_s=1.0,
        mp3_bitrate_kbps=128, sample_rate=44100, channels=1),
    "broadcast": Preset(
        name="broadcast", target_lufs=-23.0, lufs_tolerance_lu=1.0, true_peak_ceiling_db=-1.0,
        noise_floor_db=-60.0, room_tone_db=-78.0, head_room_tone_s=0.5, tail_room_tone_s=1.0,
        mp3_bitrate_kbps=192, sample_rate=48000, channels=1),
}

# Store presets: ACX levels (no store sets a loudness window) with each store's own file rules.
_AUDIOBOOK_LEVELS = dict(target_lufs=-20.0, lufs_tolerance_lu=None, rms_min_db=-23.0, rms_max_db=-18.0,
                         noise_floor_db=-60.0, require_room_tone=True, room_tone_db=-72.0, credits=True)
PRESETS["apple-books"] = Preset(
    name="apple-books", **_AUDIOBOOK_LEVELS, true_peak_ceiling_db=-1.0, head_room_tone_s=0.75,
    tail_room_tone_s=2.5, sample_rate=44100, channels=2, mp3_bitrate_kbps=320, mp3_min_kbps=(128.0, 256.0),
    aac_bitrate_kbps=256, aac_min_kbps=256, book_file_max_hours=23.0, book_files=("m4b",))
PRESETS["google-play"] = Preset(
    name="google-play", **_AUDIOBOOK_LEVELS, sample_peak_ceiling_db=-3.0, head_room_tone_s=0.75,
    tail_room_tone_s=2.5, head_tail_range_s=(0.25, 10.0, 0.25, 10.0), sample_rate=44100, channels=1,
    mp3_bitrate_kbps=128, mp3_min_kbps=(128.0, 256.0), lossless_ok=True, book_minutes=(5.0, 100 * 60.0))

# Presets whose loudness target depends on the channel count: (mono, stereo).
_CHANNEL_TARGETS: dict[str, tuple[float, float]] = {"podcast": (-19.0, -16.0)}


def _coerce(preset: str, key: str, kind: str, value: object) -> object:
    """Check and convert one override (project files are YAML/JSON: "192" or 192.0 happen)."""
    optional = kind.endswith("| None")
    base = kind.removesuffix("| None").strip()
    bad = MasteringError(f"preset {preset!r}: {key} must be {kind}, not {value!r}")
    if value is None:
        if optional:
            return None
        raise bad
    try:
        if base == "bool":
            if isinstance(value, bool):
                return value
            raise bad
        if base == "int":
            number = float(value)  # type: ignore[arg-type]
            if not number.is_integer() or isinstance(value, bool):
                raise bad
            return int(number)
        if base == "float":
            if isinstance(value, bool):
                raise bad
            number = float(value)  # type: ignore[arg-type]
            if not math.isfinite(number):
                raise bad
            return number
        if base.startswith("tuple[str"):
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):  # type: ignore[union-attr]
                raise bad
            return tuple(value)  # type: ignore[arg-type]
        if base.startswith("tuple"):
            items = tuple(float(v) for v in value)  # type: ignore[union-attr]
            if len(items) != base.count("float"):
                raise bad
            return items
        return str(value)
    except (TypeError, ValueError):
        raise bad from None


def get_preset(name: str, overrides: Mapping[str, object] | None = None) -> Preset:
    """The preset `name` with per-project `overrides` applied (field name → value).

    Overriding `channels` on `podcast` without a `target_lufs` also moves the target (−19 LUFS
    mono, −16 LUFS stereo), because that is what the podcast convention means.

    Raises MasteringError for an unknown preset, an unknown field or an invalid combination.
    """
    try:
        base = PRESETS[name]
    except KeyError:
        raise MasteringError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}") from None
    if not overrides:
        return base
    fields = {f.name: f for f in dataclasses.fields(Preset)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise MasteringError(f"preset {name!r}: unknown setting(s) {', '.join(unknown)}")
    changes = {k: _coerce(name, k, str(fields[k].type), v) for k, v in overrides.items()}
    if "channels" in changes and "target_lufs" not in changes and name in _CHANNEL_TARGETS:
        mono, stereo = _CHANNEL_TARGETS[name]
        changes["target_lufs"] = stereo if changes["channels"] == 2 else mono
    if "channels" in changes and "mp3_bitrate_kbps" not in changes and base.mp3_min_kbps is not None:
        changes["mp3_bitrate_kbps"] = max(base.mp3_bitrate_kbps, int(base.mp3_min_kbps[changes["channels"] - 1]))
    try:
        return dataclasses.replace(base, **changes)
    except TypeError as exc:
        raise MasteringError(f"preset {name!r}: invalid override ({exc})") from None
