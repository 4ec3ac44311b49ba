"""Tags for delivered files: one `Tags` value, written as ID3v2.3 for MP3 (and as ffmetadata for
M4B, in `m4b.py`).

Field choices, so apps show the right thing:
- author → TPE1 (artist) and TPE2 (album artist); apps group audiobooks by album artist.
- narrator → TCOM (composer), which Audiobookshelf and most audiobook players read as the narrator
  (Apple does the same with the MP4 composer atom), plus TXXX:NARRATOR spelling it out.
- track n/N → TRCK "n/N"; year → TDRC (mutagen writes TYER in v2.3); language → TLAN as ISO 639-2.
- comment → COMM; the default says the voice is synthetic, which stores require disclosing.
ID3v2.3 rather than 2.4 because Windows and older car players still read only 2.3.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCOM,
    TCON,
    TDRC,
    TIT2,
    TLAN,
    TPE1,
    TPE2,
    TRCK,
    TXXX,
    CTOCFlags,
    ID3NoHeaderError,
)

from mastering.errors import MasteringError

SYNTHETIC_VOICE_COMMENT = "Narrated with a synthetic (AI-generated) voice."

# ISO 639-1 → ISO 639-2/B for the languages bookcast reads; anything 3 letters passes through.
_ISO639_2 = {"en": "eng", "zh": "chi", "fr": "fre", "de": "ger", "es": "spa", "ja": "jpn",
             "it": "ita", "pt": "por", "ru": "rus", "ko": "kor", "nl": "dut"}


@dataclass(frozen=True)
class Tags:
    """What a player shows for a delivered file."""

    title: str
    album: str = ""
    artist: str = ""  # the author
    narrator: str = ""
    track: int | None = None
    track_total: int | None = None
    year: str = ""
    language: str = "en"  # BCP 47 / ISO 639-1 ("en", "zh", "zh-CN") or ISO 639-2
    comment: str = SYNTHETIC_VOICE_COMMENT
    genre: str = "Audiobook"
    cover: bytes | None = field(default=None, repr=False)
    cover_mime: str = "image/jpeg"


@dataclass(frozen=True)
class ChapterMark:
    """A chapter on a whole-book timeline, in seconds."""

    title: str
    start_s: float
    end_s: float


def iso639_2(language: str) -> str:
    """'en' / 'en-GB' / 'eng' → 'eng'; unknown two-letter codes → 'und' (undetermined)."""
    base = language.strip().lower().replace("_", "-").split("-")[0]
    if len(base) == 3 and base.isalpha():
        return base
    return _ISO639_2.get(base, "und")


def sniff_image_mime(data: bytes, declared: str = "") -> str:
    """The cover's real type from its magic bytes (JPEG, PNG); falls back to `declared`."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return declared or "image/jpeg"


def id3_frames(tags: Tags) -> list:
    """The ID3 frames for `tags` (without chapters)."""
    lang = iso639_2(tags.language)
    frames: list = [TIT2(encoding=3, text=tags.title)]
    if tags.album:
        frames.append(TALB(encoding=3, text=tags.album))
    if tags.artist:
        frames += [TPE1(encoding=3, text=tags.artist), TPE2(encoding=3, text=tags.artist)]
    if tags.narrator:
        frames += [TCOM(encoding=3, text=tags.narrator),
                   TXXX(encoding=3, desc="NARRATOR", text=tags.narrator)]
    if tags.track is not None:
        text = f"{tags.track}/{tags.track_total}" if tags.track_total else str(tags.track)
        frames.append(TRCK(encoding=3, text=text))
    if tags.year:
        frames.append(TDRC(encoding=3, text=tags.year))
    if tags.genre:
        frames.append(TCON(encoding=3, text=tags.genre))
    frames.append(TLAN(encoding=3, text=lang))
    if tags.comment:
        frames.append(COMM(encoding=3, lang=lang if lang != "und" else "eng", desc="",
                           text=tags.comment))
    if tags.cover:
        frames.append(APIC(encoding=3, mime=sniff_image_mime(tags.cover, tags.cover_mime),
                           type=3, desc="Cover", data=tags.cover))
    return frames


def chapter_frames(chapters: Sequence[ChapterMark]) -> list:
    """ID3v2 Chapter frames (CHAP per chapter, one top-level ordered CTOC), times in ms."""
    frames: list = []
    ids = []
    for i, ch in enumerate(chapters):
        if ch.end_s < ch.start_s:
            raise MasteringError(f"chapter {ch.title!r} ends before it starts")
        cid = f"chp{i}"
        ids.append(cid)
        frames.append(CHAP(element_id=cid, start_time=int(round(ch.start_s * 1000)),
                           end_time=int(round(ch.end_s * 1000)), start_offset=0xFFFFFFFF,
                           end_offset=0xFFFFFFFF, sub_frames=[TIT2(encoding=3, text=ch.title)]))
    if ids:
        frames.insert(0, CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                              child_element_ids=ids,
                              sub_frames=[TIT2(encoding=3, text="Contents")]))
    return frames


def write_id3(path: str | Path, tags: Tags, chapters: Sequence[ChapterMark] = ()) -> None:
    """Replace the ID3 tag of the MP3 at `path` with `tags` (and chapters), as ID3v2.3.

    Raises MasteringError when mutagen cannot write the tag (OSError propagates for the caller's
    atomic writer to turn into an OutputError).
    """
    try:
        ID3(path).delete(path)
    except ID3NoHeaderError:
        pass
    id3 = ID3()
    for frame in id3_frames(tags) + chapter_frames(chapters):
        id3.add(frame)
    try:
        id3.save(path, v2_version=3)
    except (ValueError, TypeError) as exc:
        raise MasteringError(f"cannot write ID3 tag ({exc})", path) from exc
