"""The `produce_podcast` flow: find new or changed episode scripts, produce only those, rebuild the feed.

A podcast project is a folder whose project.toml has a `[podcast]` table and whose `episodes/`
folder holds one Markdown script per episode. Each run:

1. scans the scripts and computes each one's *recipe hash* (spoken text and pauses, tags, engine
   fingerprint, seed, resolved mastering preset; see flows/steps/episode.py): an episode is
   produced when its hash differs from the one recorded in `episodes.json` in the output folder,
   or when its MP3 is missing — so a run where nothing changed does nothing, and fixing a typo
   re-produces exactly that episode (reusing its unchanged sentences from the clip cache);
2. produces each pending episode under a per-episode lock file (`.locks/<key>.lock`, an advisory
   `flock`), re-checking the state once the lock is held: two overlapping runs (a scheduled run
   while an on-demand one is still going) never produce the same episode twice. The kernel drops
   the lock when a process dies, so a crash leaves no stale lock behind. This works on Prefect's
   ephemeral server too; the served deployment adds a deployment concurrency limit of 1 on top;
3. rebuilds `feed.xml` from the state under a short state lock, atomically.

One episode failing (after a retry) does not stop the others; the feed is still rebuilt, and the
run then ends with an error naming the failed scripts.
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

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.steps import episode as ep
from flows.steps.feed import FeedChannel, FeedEpisode, Transcript, public_url, write_feed
from flows.steps.project import Project, load_project
from flows.steps.synthesis import Synthesis, engine_spec
from ingest.errors import InputError, OutputError, SynthesisError
from mastering.files import write_bytes_atomic
from mastering.presets import Preset, get_preset
from synth.cache import ClipCache
from synth.pool import PoolConfig, make_pool

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
        record_episode(out, record)
        return {"key": script.key, "status": "produced", "record": record}


@task(name="produce-episode", retries=1, retry_delay_seconds=1, cache_policy=NO_CACHE,
      task_run_name="episode-{script.key}")
def produce_episode(settings: ep.PodcastSettings, script: ep.EpisodeScript, synth: Synthesis,
                    preset: Preset, seed: int, out: Path, force: bool = False) -> dict:
    result = produce_one(settings, script, synth, preset, seed, out, force)
    logger = get_run_logger()
    if result["status"] == "produced":
        r = result["record"]
        logger.info("%s -> %s (%.1f s, %s LUFS; %d sentences synthesized, %d reused)", script.path.name,
                    r["file"], r["duration_s"], r["measures"].get("lufs"), r["synthesized"], r["reused"])
    else:
        logger.info("%s: %s", script.path.name, result["status"])
    return result


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
            items.append(FeedEpisode(
                guid=record["guid"], title=record["title"], summary=record["summary"], published=published,
                audio_url=public_url(settings.base_url, record["file"]), audio_bytes=audio.stat().st_size,
                duration_s=record["duration_s"], number=record["number"], transcripts=transcripts))
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


# ------------------------------------------------------------------------------------------- flow
def output_dir(proj: Project, settings: ep.PodcastSettings, out_dir: str | None) -> Path:
    out = Path(out_dir) if out_dir else (proj.out_dir or Path.cwd() / "bookcast-out" / settings.slug)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder ({exc.strerror or exc})", out) from exc
    return out


@flow(name="produce_podcast", validate_parameters=False)
def produce_podcast(project: str, script: str | None = None, force: bool = False,
                    out_dir: str | None = None, workers: int | None = 0,
                    dask_address: str | None = None) -> dict:
    """Produce every new or changed episode of the podcast `project` (or only `script`), then
    rebuild the feed; returns a summary.

    Synthesis runs in this process by default (`workers=0`: an episode is minutes of speech);
    `workers`/`dask_address` choose a pool as for audiobooks. Raises InputError for a bad project
    or script, and SynthesisError naming the episodes that failed (after the others finished and
    the feed was rebuilt).
    """
    logger = get_run_logger()
    proj = load_project(project)
    settings = ep.podcast_settings(proj)
    preset = get_preset(proj.preset, proj.preset_overrides)
    out = output_dir(proj, settings, out_dir)
    scripts = [ep.read_episode(settings.resolve_script(script), settings)] if script else ep.scan_episodes(settings)
    spec = engine_spec(proj.engine, proj.voice, proj.lexicon)
    pool = make_pool(PoolConfig(workers, (), dask_address), use_gpus=spec.uses_gpu)
    try:
        synth = Synthesis(pool, spec, pool.fingerprint(spec), ClipCache((proj.work_dir or out / ".work") / "clips"),
                          proj.seed)
        state = load_state(out)
        pending = [s for s in scripts if force or not is_current(
            state.get(s.key), ep.recipe_hash(settings, s, synth.fingerprint, preset, proj.seed), out)]
        logger.info("%d script(s), %d to produce (synthesis %s)", len(scripts), len(pending), pool.description)
        results = []
        for s in pending:  # one at a time: episodes are short; the lock makes overlapping runs safe
            run = produce_episode(settings, s, synth, preset, proj.seed, out, force, return_state=True)
            if run.is_completed():
                results.append(run.result())
            else:
                results.append({"key": s.key, "status": "failed", "record": None, "error": _error_text(run)})
                logger.error("%s failed: %s", s.path.name, results[-1]["error"])
    finally:
        pool.close()
    done = {r["key"] for r in results}
    results += [{"key": s.key, "status": "unchanged", "record": state.get(s.key)} for s in scripts
                if s.key not in done]
    refresh_feed_fields(out, scripts)
    feed, listed = rebuild_feed(settings, out)
    summary = _summary(settings, out, feed, listed, results)
    _artifact(summary)
    failed = [r for r in results if r["status"] == "failed"]
    if failed:
        raise SynthesisError(f"{len(failed)} episode(s) failed: " + "; ".join(
            f"{r['key']}: {r['error']}" for r in failed) + " — fix and run again", settings.episodes_dir)
    return summary


def _error_text(state) -> str:
    try:
        state.result(raise_on_failure=True)
    except Exception as exc:  # the task's own exception, whatever its type
        return f"{type(exc).__name__}: {exc}"
    return state.message or state.name


def _summary(settings: ep.PodcastSettings, out: Path, feed: Path, listed: int, results: list[dict]) -> dict:
    rows = []
    for r in sorted(results, key=lambda r: r["key"]):
        rec = r.get("record") or {}
        rows.append({"key": r["key"], "status": r["status"], "file": rec.get("file", ""),
                     "number": rec.get("number"), "title": rec.get("title", ""),
                     "duration_s": rec.get("duration_s", 0.0), "error": r.get("error", "")})
    count = {s: sum(r["status"] == s for r in rows) for s in ("produced", "unchanged", "busy", "failed")}
    return {"podcast": settings.title, "out_dir": str(out), "feed": str(feed), "feed_items": listed,
            "episodes": rows, "total": count}


def _artifact(summary: dict) -> None:
    table = [{k: row[k] for k in ("key", "status", "file", "duration_s")} for row in summary["episodes"]]
    create_table_artifact(table=table, key="podcast-episodes",
                          description=f"{summary['podcast']}: {summary['total']}")

