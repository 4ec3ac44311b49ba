"""Podcast settings and episode scripts, and the plain (Prefect-free) rendering of one episode.

The `[podcast]` table of project.toml says what the show is and where it is published; each
Markdown script in the episodes folder is one episode (front matter: title, date, episode,
summary). An episode is rendered with the same steps as an audiobook chapter (flows/steps/chapter.py:
script, synthesize, pauses) and the mastering package's stitch and deliver functions, into one MP3.

The *recipe hash* names everything that changes the episode's MP3: the spoken text with its pauses,
the tags (title, number, year, show, cover), the engine's fingerprint, the seed and the resolved
preset. Metadata that lives only in the feed (summary, exact date) is not part of it, so editing a
summary refreshes the feed without re-synthesizing anything.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.steps.export import deliver_part, stitch
from flows.steps.review import review
from flows.steps.feed import TRANSCRIPT_MIME, new_episode_guid, public_url
from flows.steps.project import Project
from flows.steps.spoken import script as script_lines
from flows.steps.synthesis import Synthesis, synthesize
from ingest.errors import InputError
from ingest.markdown import read_markdown, read_text_file, split_front_matter
from ingest.model import Book, slugify
from ingest.script import Line
from mastering.chapters_json import MIME as CHAPTERS_MIME
from mastering.chapters_json import chapters_bytes
from mastering.files import write_bytes_atomic
from mastering.presets import Preset
from mastering.tags import ChapterMark, Tags

log = logging.getLogger(__name__)

RECIPE_VERSION = 3  # bump when rendering changes in a way that should re-produce every episode


@dataclass(frozen=True)
class PodcastSettings:
    """The `[podcast]` table, validated, with paths resolved against the project folder."""

    config_file: Path
    title: str
    description: str
    base_url: str  # where the output folder is published; enclosure and feed URLs start here
    episodes_dir: Path
    author: str = ""
    language: str = "en"
    link: str = ""  # the show's website (default: base_url)
    email: str = ""
    category: str = ""
    explicit: bool = False
    cover: Path | None = None
    cron: str = ""
    timezone: str = "UTC"

    @property
    def slug(self) -> str:
        return slugify(self.title) or "podcast"

    @property
    def feed_url(self) -> str:
        return public_url(self.base_url, "feed.xml")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def cover_bytes(self) -> bytes | None:
        """The cover image's bytes (None without a cover). Raises InputError naming the file."""
        if self.cover is None:
            return None
        try:
            return self.cover.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read cover ({exc.strerror or exc})", self.cover) from exc

    def resolve_script(self, script: str | Path) -> Path:
        """A script given on the command line: a path, or a file name inside the episodes folder.

        Raises InputError when it does not exist or lies outside the episodes folder (the feed
        lists only that folder's episodes).
        """
        path = Path(script)
        if not path.exists() and (self.episodes_dir / path.name).exists():
            path = self.episodes_dir / path.name
        if not path.exists():
            raise InputError("script not found", script)
        if path.resolve().parent != self.episodes_dir:
            raise InputError(f"not in the episodes folder {self.episodes_dir}; move it there so the "
                             f"feed lists it", path)
        return path.resolve()


def podcast_settings(proj: Project) -> PodcastSettings:
    """Read and check the `[podcast]` table. Raises InputError naming project.toml."""
    config = proj.root / "project.toml"
    table = proj.extra.get("podcast")
    if not isinstance(table, dict):
        raise InputError("no [podcast] table: not a podcast project (see projects/weekly-podcast)", config)

    def text(key: str, required: bool = False, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or (required and not value.strip()):
            raise InputError(f"[podcast] {key} = \"...\" is {'missing' if key not in table else 'not text'}",
                             config)
        return value.strip()

    base_url = text("base_url", required=True)
    if not base_url.startswith(("https://", "http://")):
        raise InputError(f"[podcast] base_url must be an http(s) URL, not {base_url!r}", config)
    schedule = table.get("schedule", {})
    if not isinstance(schedule, dict):
        raise InputError("[podcast.schedule] must be a table with cron and timezone", config)
    zone = str(schedule.get("timezone", "UTC"))
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"[podcast.schedule] timezone {zone!r} is not an IANA time zone "
                         f"(like \"Europe/London\")", config) from None
    cover = table.get("cover")
    cover_path = (proj.root / str(cover)).resolve() if cover else None
    if cover_path is not None:
        if not cover_path.is_file():
            raise InputError(f"[podcast] cover {cover!r} not found", config)
        if cover_path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            raise InputError("[podcast] cover must be a .png or .jpg image", config)
    explicit = table.get("explicit", False)
    if not isinstance(explicit, bool):
        raise InputError("[podcast] explicit must be true or false", config)
    return PodcastSettings(
        config_file=config, title=text("title", required=True),
        description=text("description", required=True), base_url=base_url,
        episodes_dir=(proj.root / text("episodes", default="episodes")).resolve(),
        author=text("author"), language=text("language", default="en") or "en",
        link=text("link") or base_url, email=text("email"), category=text("category"),
        explicit=explicit, cover=cover_path, cron=str(schedule.get("cron", "")).strip(), timezone=zone)


@dataclass(frozen=True)
class EpisodeScript:
    """One episode's script, read and checked."""

    path: Path
    key: str  # slug of the file name: names the MP3, the lock and the state record
    title: str
    number: int | None
    published: datetime | None  # from the front matter's date; None: first production time
    summary: str
    language: str
    guid: str  # from the front matter; "" = derive once and keep
    book: Book


def read_episode(path: Path, settings: PodcastSettings) -> EpisodeScript:
    """Read a script and its front matter. Raises InputError naming the file."""
    front, _ = split_front_matter(read_text_file(path), path)
    book = read_markdown(path)
    number = front.get("episode", front.get("number"))
    if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
        raise InputError(f"front matter: episode must be a whole number ≥ 1, not {number!r}", path)
    key = slugify(path.stem)
    if not key:
        raise InputError("file name gives no usable episode key; use letters or digits", path)
    return EpisodeScript(
        path=path.resolve(), key=key, title=str(front.get("title") or book.meta.title),
        number=number, published=_published(front.get("date"), settings.tz, path),
        summary=str(front.get("summary") or front.get("description") or ""),
        language=str(front.get("language") or front.get("lang") or settings.language),
        guid=str(front.get("guid") or ""), book=book)


def _published(value: object, tz: ZoneInfo, path: Path) -> datetime | None:
    """Front matter `date` as an aware datetime: a bare date is midnight in the show's zone."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"front matter: date {value!r} is not YYYY-MM-DD", path) from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    raise InputError(f"front matter: date {value!r} is not YYYY-MM-DD", path)


def scan_episodes(settings: PodcastSettings) -> list[EpisodeScript]:
    """Every script in the episodes folder (`_draft.md` and hidden files are skipped), by name.

    Raises InputError for a missing folder, a broken script, or two scripts claiming one episode
    number or one key.
    """
    folder = settings.episodes_dir
    if not folder.is_dir():
        raise InputError("episodes folder not found", folder)
    scripts = [read_episode(p, settings) for p in sorted(folder.glob("*.md"))
               if not p.name.startswith(("_", "."))]
    seen: dict[object, Path] = {}
    for s in scripts:
        for ident in (("key", s.key), ("number", s.number)):
            if ident[1] is None:
                continue
            if ident in seen:
                raise InputError(f"same episode {ident[0]} {ident[1]!r} as {seen[ident].name}", s.path)
            seen[ident] = s.path
    return scripts


def episode_tags(settings: PodcastSettings, script: EpisodeScript) -> Tags:
    year = str(script.published.year) if script.published else ""
    cover = settings.cover_bytes()
    return Tags(title=script.title, album=settings.title, artist=settings.author, track=script.number,
                year=year, language=script.language, genre="Podcast", cover=cover,
                cover_mime="image/png" if settings.cover and settings.cover.suffix.lower() == ".png"
                else "image/jpeg")


def recipe_hash(settings: PodcastSettings, script: EpisodeScript, fingerprint: str, preset: Preset,
                seed: int) -> str:
    """sha256 over everything that changes the episode's MP3 (see the module docstring)."""
    tags = dataclasses.asdict(episode_tags(settings, script))
    cover = tags.pop("cover")
    spoken = [[c.title, [[b.text, b.kind, b.pause_s] for b in c.blocks]] for c in script.book.chapters]
    recipe = {"v": RECIPE_VERSION, "spoken": spoken, "language": script.language, "tags": tags,
              "cover": hashlib.sha256(cover).hexdigest() if cover else None, "engine": fingerprint,
              "seed": seed, "preset": dataclasses.asdict(preset)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def episode_lines(book: Book, language: str, engine: str) -> tuple[list[Line], list[tuple[int, str]]]:
    """The whole script as one list of lines, and (first line index, title) of each segment.

    A `##` segment after the first ends the previous one with a section-break pause.
    """
    lines: list[Line] = []
    starts: list[tuple[int, str]] = []
    for chapter in book.chapters:
        part = script_lines(chapter, language, engine)
        if not part:
            continue
        if lines and lines[-1].pause_s is None:
            lines[-1] = dataclasses.replace(lines[-1], boundary="section_break")
        starts.append((len(lines), chapter.title))
        lines += part
    return lines, starts


def render(settings: PodcastSettings, script: EpisodeScript, synth: Synthesis, preset: Preset, seed: int,
           out: Path, previous: dict | None) -> dict:
    """Synthesize, stitch, master and deliver one episode as `<out>/<key>.mp3` with `.srt` and
    `.vtt` transcripts; returns its state record (without the recipe).

    Raises SynthesisError, MasteringError, OutputError or InputError.
    """
    lines, starts = episode_lines(script.book, script.language, synth.spec.kind)
    if not lines:
        raise InputError("contains no readable text", script.path)
    made = synthesize(synth, lines)
    checked = review(synth, lines, made.keys)  # clip QC, re-takes for engines that can
    work = out / ".work" / "tmp"
    assembly = stitch(lines, synth.cache, checked.keys, preset, work)
    file = f"{script.key}.mp3"
    try:
        marks = _chapter_marks(starts, assembly.spans, assembly.duration)
        part = deliver_part(out / file, assembly, [line.sentence.text for line in lines], preset,
                            episode_tags(settings, script), marks, work)
        # Podcasting 2.0 JSON chapters: one per `##` segment (the whole episode when it has one).
        json_marks = marks or [ChapterMark(script.title, 0.0, assembly.duration)]
    finally:
        assembly.close()
    chapters = f"{script.key}.chapters.json"
    write_bytes_atomic(out / chapters, chapters_bytes(json_marks, title=script.title, podcast_name=settings.title,
                                                      file_name=file))
    transcripts = [{"file": f"{script.key}{suffix}", "mime": TRANSCRIPT_MIME[suffix]} for suffix in (".vtt", ".srt")]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    published = script.published or (
        datetime.fromisoformat(previous["published"]) if previous else now)
    return {
        "key": script.key, "script": script.path.name, "file": file, "title": script.title,
        "number": script.number, "summary": script.summary, "published": published.isoformat(),
        "language": script.language,
        "guid": script.guid or (previous or {}).get("guid") or new_episode_guid(settings.feed_url, script.key),
        "duration_s": part["duration_s"], "bytes": (out / file).stat().st_size,
        "measures": part["measures"], "qc": part["qc"], "transcripts": transcripts, "produced_at": now.isoformat(),
        "chapters": {"file": chapters, "mime": CHAPTERS_MIME},
        "sentences": len(lines), "synthesized": made.synthesized, "reused": made.reused,
        "retakes": checked.retakes, "clip_flags": list(checked.unresolved),
    }


def _chapter_marks(starts: list[tuple[int, str]], spans: list[tuple[float, float]],
                   duration: float) -> list[ChapterMark]:
    """ID3 chapters for a script with several `##` segments (none for a single segment)."""
    if len(starts) < 2:
        return []
    times = [0.0] + [spans[i][0] for i, _ in starts[1:]] + [duration]
    return [ChapterMark(title, times[k], times[k + 1]) for k, (_, title) in enumerate(starts)]

