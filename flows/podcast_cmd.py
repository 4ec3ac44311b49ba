"""`bookcast serve <project>` and `bookcast episode <project> <script>`: the podcast workflow.

`serve` registers a Prefect deployment of `produce_podcast` with the project's cron schedule and
time zone and serves it until interrupted. Schedules need a real Prefect API (the ephemeral server
refuses them), so with no PREFECT_API_URL set, `serve` uses the server already listening on
127.0.0.1:<port> or starts `prefect server start` there (UI included) and stops it on exit.
The deployment has a concurrency limit of 1 (a late run queues behind the running one); the
per-episode locks of flows/podcast.py keep `bookcast episode` runs from colliding with it too.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ingest.errors import BookcastError, InputError

log = logging.getLogger(__name__)

DEFAULT_PORT = 4200
_SERVER_START_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve a podcast project's scheduled Prefect deployment")
    serve.add_argument("project", help="podcast project folder (project.toml with [podcast])")
    serve.add_argument("--name", help="deployment name (default: the podcast's slug)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port of the local Prefect server when PREFECT_API_URL is unset ({DEFAULT_PORT})")
    serve.set_defaults(func=run_serve)
    episode = sub.add_parser("episode", help="produce one podcast episode now and rebuild the feed")
    episode.add_argument("project", help="podcast project folder")
    episode.add_argument("script", help="the episode's Markdown script (a path, or a name in episodes/)")
    episode.add_argument("--force", action="store_true", help="re-produce even if nothing changed")
    episode.add_argument("--out", help="output folder (default: [output] dir of the project)")
    episode.set_defaults(func=run_episode)


def podcast_deployment(project: str | Path, name: str | None = None):
    """The RunnerDeployment of `produce_podcast` for `project`: its cron schedule in its time zone,
    the project's absolute path as the parameter, a concurrency limit of 1 (queue, not overlap).

    Raises InputError when the project has no `[podcast.schedule] cron` or the cron is invalid.
    """
    from prefect.client.schemas.objects import (
        ConcurrencyLimitConfig,
        ConcurrencyLimitStrategy,
    )
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.podcast import produce_podcast
    from flows.steps.episode import podcast_settings
    from flows.steps.project import load_project

    proj = load_project(project)
    settings = podcast_settings(proj)
    if not settings.cron:
        raise InputError("[podcast.schedule] cron = \"...\" is missing (e.g. \"0 7 * * 1\" for Mondays 07:00)",
                         settings.config_file)
    try:
        schedule = Cron(settings.cron, timezone=settings.timezone)
    except ValueError as exc:
        raise InputError(f"[podcast.schedule] cron {settings.cron!r} is invalid ({exc})",
                         settings.config_file) from None
    return produce_podcast.to_deployment(
        name=name or settings.slug,
        schedules=[schedule],
        parameters={"project": str(proj.root)},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        description=f"{settings.title}: produce new or changed episodes and rebuild the feed",
        tags=["bookcast", "podcast"],
        # By module, not file path: the served runner imports flows.podcast wherever it starts.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def run_serve(args: argparse.Namespace) -> int:
    server = ensure_api(args.port)
    try:
        from prefect import serve

        deployment = podcast_deployment(args.project, args.name)
        print(f"serving {deployment.name!r} on {os.environ['PREFECT_API_URL']} "
              f"(schedule: {deployment.schedules[0].schedule.cron} "
              f"{deployment.schedules[0].schedule.timezone}); Ctrl-C stops", file=sys.stderr)
        serve(deployment, print_starting_message=False)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


def ensure_api(port: int) -> subprocess.Popen | None:
    """Point Prefect at a real API server; returns the server process this call started, if any.

    PREFECT_API_URL set: used as is. Otherwise a server answering on 127.0.0.1:`port` is reused, or
    `prefect server start` is launched there (log in PREFECT_HOME/bookcast-server.log). Must run
    before Prefect is imported: Prefect reads its settings at import. Raises BookcastError when
    the server does not come up.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        os.environ["PREFECT_API_URL"] = url
        return None
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    log_path = home / "bookcast-server.log"
    env = {**os.environ, "PREFECT_UI_ENABLED": "true", "PREFECT_SERVER_API_HOST": "127.0.0.1",
           "PREFECT_SERVER_API_PORT": str(port)}
    try:
        home.mkdir(parents=True, exist_ok=True)
        log_file = open(log_path, "ab")
    except OSError as exc:
        raise BookcastError(f"cannot write the Prefect server log ({exc.strerror or exc})", log_path) from exc
    with log_file:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BookcastError(f"`prefect server start` exited with status {proc.returncode}; see its log",
                                log_path)
        if _healthy(url):
            os.environ["PREFECT_API_URL"] = url
            print(f"started a Prefect server: UI at http://127.0.0.1:{port}", file=sys.stderr)
            return proc
        time.sleep(0.5)
    proc.terminate()
    raise BookcastError(f"the Prefect server did not answer on {url} within {_SERVER_START_TIMEOUT_S:.0f} s",
                        log_path)


def _healthy(api_url: str) -> bool:
    """Probe the Prefect API bookcast uses (its own server on 127.0.0.1 unless the user set
    PREFECT_API_URL); a health check, nothing is downloaded."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def run_episode(args: argparse.Namespace) -> int:
    from flows.podcast import produce_podcast

    summary = produce_podcast(args.project, script=args.script, force=args.force, out_dir=args.out)
    print_summary(summary)
    return 0


def print_summary(summary: dict) -> None:
    print(f"{summary['podcast']} → {summary['out_dir']}")
    for e in summary["episodes"]:
        number = "" if e["number"] is None else f"#{e['number']}"
        print(f"  {number:>4}  {e['status']:<9}  {e['duration_s']:7.1f} s  {e['file'] or e['key']}")
    t = summary["total"]
    print(f"{t['produced']} produced, {t['unchanged']} unchanged, {t['busy']} busy elsewhere, "
          f"{t['failed']} failed; feed: {summary['feed']} ({summary['feed_items']} episodes)")
