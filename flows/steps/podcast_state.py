"""A podcast's output folder: the episode state (episodes.json), per-episode locks, producing one
episode unless it is current, and the feed rebuilt from the state. Prefect-free: the
`produce_podcast` flow (flows/podcast.py) wraps these in tasks.

Each run computes every script's *recipe hash* (flows/steps/episode.py) and produces an episode when
its hash differs from the one recorded in `episodes.json`, or its MP3 is missing, under a
per-episode lock file (`.locks/<key>.lock`, an advisory `flock`, re-checking the state once the lock
is held): two overlapping runs never produce the same episode twice, and the kernel drops the lock
when a process dies. `feed.xml` is rebuilt from the state under a short state lock, atomically.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from ingest.errors import InputError, OutputError
from mastering.files import write_bytes_atomic
from mastering.presets import Preset

from flows.steps import episode as ep
from flows.steps.feed import FeedChannel, FeedEpisode, Transcript, public_url, write_feed
from flows.steps.project import Project
from flows.steps.synthesis import Synthesis

log = logging.getLogger(__name__)

STATE_FILE = "episodes.json"
FEED_FILE = "feed.xml"
_STATE_VERSION = 1


# ------------------------------------------------------------------------------------------ locks
@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
    """Try to take the exclusive lock `path` without waiting; yields whether it was taken.

    `flock` locks belong to the open file, so two threads of one process exclude each other as
    two processes do. Raises OutputError when the lock file cannot be created.
    """
    with _lock_fd(path) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the descriptor releases the lock


@contextlib.contextmanager
def hold_lock(path: Path) -> Iterator[None]:
    """Wait for and hold the exclusive lock `path` (short critical sections only)."""
    with _lock_fd(path) as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _lock_fd(path: Path) -> Iterator[int]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot create lock file ({exc.strerror or exc})", path) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def episode_lock(out: Path, key: str) -> Path:
    return out / ".locks" / f"{key}.lock"


# ------------------------------------------------------------------------------------------ state
def load_state(out: Path) -> dict[str, dict]:
    """Recorded episodes by key ({} when none). Raises InputError for a corrupt state file."""
    path = out / STATE_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {_STATE_VERSION}")
        return dict(data["episodes"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"unreadable episode state ({exc}); delete it to re-produce every episode",
                         path) from exc


def record_episode(out: Path, record: dict) -> None:
    """Add or replace one episode's record (read-modify-write under the state lock)."""
    with hold_lock(out / ".locks" / "state.lock"):
        state = load_state(out)
        state[record["key"]] = record
        _write_state(out, state)


def refresh_feed_fields(out: Path, scripts: list[ep.EpisodeScript]) -> int:
    """Copy feed-only metadata (summary, date) from the scripts into their existing records, so
    editing a summary updates the feed without re-producing audio. Returns how many changed."""
    changed = 0
    with hold_lock(out / ".locks" / "state.lock"):
        state = load_state(out)
        for s in scripts:
            record = state.get(s.key)
            if record is None:
                continue
            fields = {"summary": s.summary}
            if s.published is not None:
                fields["published"] = s.published.isoformat()
            if any(record.get(k) != v for k, v in fields.items()):
                record.update(fields)
                changed += 1
        if changed:
            _write_state(out, state)
    return changed


def _write_state(out: Path, state: dict[str, dict]) -> None:
    data = {"version": _STATE_VERSION, "episodes": dict(sorted(state.items()))}
    write_bytes_atomic(out / STATE_FILE, json.dumps(data, ensure_ascii=False, indent=2).encode())


def is_current(record: dict | None, recipe: str, out: Path) -> bool:
    return bool(record) and record.get("recipe") == recipe and (out / record["file"]).exists()


# ----------------------------------------------------------------------------------- one episode
def produce_one(settings: ep.PodcastSettings, script: ep.EpisodeScript, synth: Synthesis,
                preset: Preset, seed: int, out: Path, force: bool = False) -> dict:
    """Produce `script` unless another run holds it or it is already current.

    Returns {"key", "status": "produced" | "unchanged" | "busy", "record"}. Raises what
    episode.render raises (SynthesisError, MasteringError, OutputError ...).
    """
    recipe = ep.recipe_hash(settings, script, synth.fingerprint, preset, seed)
    with try_lock(episode_lock(out, script.key)) as got:
        if not got:
            return {"key": script.key, "status": "busy", "record": None}
        previous = load_state(out).get(script.key)  # fresh: a run that held the lock may have finished it
        if not force and is_current(previous, recipe, out):
            return {"key": script.key, "status": "unchanged", "record": previous}
        record = ep.render(settings, script, synth, preset, seed, out, previous)
        record["recipe"] = recipe
        record["fingerprint"] = synth.fingerprint  # which clips this episode uses (cache prune)
        record_episode(out, record)
        return {"key": script.key, "status": "produced", "record": record}


# ------------------------------------------------------------------------------------------- feed
def rebuild_feed(settings: ep.PodcastSettings, out: Path, now: datetime | None = None) -> tuple[Path, int]:
    """Rewrite feed.xml from the recorded episodes; returns (path, items).

    Listed: recorded episodes whose script is still in the episodes folder, whose MP3 exists and
    whose date has come (scripts dated in the future are produced ahead but published on their
    date). Raises OutputError.
    """
    now = now or datetime.now(timezone.utc)
    cover_url = _publish_cover(settings, out)
    with hold_lock(out / ".locks" / "state.lock"):
        items = []
        for record in load_state(out).values():
            audio = out / record["file"]
            published = datetime.fromisoformat(record["published"])
            if not (settings.episodes_dir / record["script"]).exists() or not audio.exists() or published > now:
                continue
            transcripts = tuple(
                Transcript(public_url(settings.base_url, t["file"]), t["mime"], record["language"])
                for t in record.get("transcripts", []) if (out / t["file"]).exists())
            chapters = (record.get("chapters") or {}).get("file", "")
            items.append(FeedEpisode(
                guid=record["guid"], title=record["title"], summary=record["summary"], published=published,
                audio_url=public_url(settings.base_url, record["file"]), audio_bytes=audio.stat().st_size,
                duration_s=record["duration_s"], number=record["number"], transcripts=transcripts,
                chapters_url=public_url(settings.base_url, chapters) if chapters and (out / chapters).exists() else ""))
        channel = FeedChannel(
            title=settings.title, description=settings.description, feed_url=settings.feed_url,
            link=settings.link, author=settings.author, language=settings.language, image_url=cover_url,
            email=settings.email, category=settings.category, explicit=settings.explicit)
        path = write_feed(out / FEED_FILE, channel, items)
    return path, len(items)


def _publish_cover(settings: ep.PodcastSettings, out: Path) -> str:
    """Copy the cover into the published folder (when changed); returns its public URL or ''."""
    if settings.cover is None:
        return ""
    name = "cover" + settings.cover.suffix.lower()
    data = settings.cover_bytes()
    target = out / name
    if not target.exists() or target.read_bytes() != data:
        write_bytes_atomic(target, data)
    return public_url(settings.base_url, name)


# ---------------------------------------------------------------------------------------- folders
def out_path(proj: Project, settings: ep.PodcastSettings, out_dir: str | None) -> Path:
    """Where the podcast is published from (not created)."""
    return Path(out_dir) if out_dir else (proj.out_dir or Path.cwd() / "bookcast-out" / settings.slug)


def output_dir(proj: Project, settings: ep.PodcastSettings, out_dir: str | None) -> Path:
    """`out_path`, created. Raises OutputError."""
    out = out_path(proj, settings, out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror or exc})", out) from exc
    return out
