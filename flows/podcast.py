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

import logging
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.steps import episode as ep
from flows.steps.podcast_state import (is_current, load_state, output_dir, produce_one, rebuild_feed,
                                       refresh_feed_fields)
from flows.steps.project import load_project
from flows.steps.synthesis import Synthesis, engine_spec
from mastering.presets import Preset, get_preset
from synth.cache import ClipCache
from synth.errors import SynthesisError
from synth.pool import PoolConfig, make_pool

log = logging.getLogger(__name__)


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
    spec = engine_spec(proj.engine, proj.voice, proj.lexicon, proj.voice_settings)
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

