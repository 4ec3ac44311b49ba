"""Crash safety: kill -9 in the middle of a book, run the same command again, get the same files.

(a) The whole `bookcast make` process group (CLI, its synthesis workers, its Prefect server) is
killed once synthesized clips have started to land in the cache. No MP3 may be visible under its
final name unless it is complete; the rerun exits 0 and its MP3s are byte-identical to an
uninterrupted run into another folder. (b) One synthesis worker is killed mid-run; the run must
complete (the pool restarts dead workers) or fail cleanly, and a rerun gives the same bytes.

Each run is a real `python -m flows.cli` process (its own PREFECT_HOME, this session's Prefect API);
the uninterrupted reference is made the same way, once per module.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.id3 import ID3

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = 3
SENTENCES = 16
KILL_TIMEOUT_S = 240.0


def write_book(path: Path) -> Path:
    """A Markdown book of CHAPTERS × SENTENCES distinct sentences: ~2 minutes of espeak speech per
    chapter, enough that synthesis takes several seconds and can be interrupted."""
    vocab = ["keeper", "lamp", "stairs", "ship", "harbour", "storm", "morning", "evening", "island", "lantern", "rope", "tide", "gull", "wave", "rock", "window", "bell", "cliff", "boat", "sailor", "map", "compass", "anchor", "fog", "light"]
    verbs = ["climbed", "watched", "counted", "carried", "followed", "painted", "mended", "lifted"]
    rng = np.random.default_rng(2026)
    parts = ["---\ntitle: Crash Course\nauthor: Test Writer\n---\n"]
    for c in range(1, CHAPTERS + 1):
        parts.append(f"# Chapter {c}\n")
        sentences = []
        for _ in range(SENTENCES):
            words = [vocab[i] for i in rng.integers(0, len(vocab), int(rng.integers(6, 14)))]
            words.insert(1, verbs[int(rng.integers(0, len(verbs)))])
            sentences.append("The " + " ".join(words) + ".")
        parts.append(" ".join(sentences) + "\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def cli_process(book: Path, out: Path, api: dict[str, str], workers: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **api)
    env.pop("PREFECT_API_KEY", None)
    return subprocess.Popen([sys.executable, "-m", "flows.cli", "make", str(book), "--out", str(out),
                             "--workers", str(workers)], cwd=out.parent, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err


def clips_stored(out: Path) -> int:
    return len(list((out / ".work" / "clips").glob("??/*.json")))


def wait_for(condition, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"bookcast exited ({proc.returncode}) before {what}: the book is too small to "
                        f"interrupt\n{proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def mp3s(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.mp3"))}


def assert_complete_mp3(path: Path) -> None:
    """A file under a final name must be whole: it decodes to the end and carries its tags."""
    audio, rate = sf.read(str(path))
    assert len(audio) / rate > 1.0, path
    tags = ID3(path)
    assert tags["TALB"].text[0] == "Crash Course" and tags["TRCK"].text[0].endswith(f"/{CHAPTERS}"), path


@pytest.fixture(scope="module")
def prefect_env(prefect_harness, tmp_path_factory) -> dict[str, str]:
    """Prefect settings for the CLI processes: their own PREFECT_HOME, and the API of this session's
    harness, so a process neither migrates a database nor starts a server (~7 s each); killing one
    leaves that server running, as it would a user's `prefect server`."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    assert url, "the Prefect harness set no API URL"
    return {"PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")), "PREFECT_API_URL": str(url)}


@pytest.fixture(scope="module")
def reference(prefect_env: dict[str, str], tmp_path_factory) -> tuple[Path, dict[str, bytes], int]:
    """(book, MP3 bytes by name, clips in the cache) of one uninterrupted run, made the same way
    as the runs under test (a fresh CLI process)."""
    root = tmp_path_factory.mktemp("reference")
    book = write_book(root / "book.md")
    rc, err = finish(cli_process(book, root / "out", prefect_env, workers=2))
    assert rc == 0, err[-3000:]
    files = mp3s(root / "out")
    assert len(files) == CHAPTERS
    return book, files, clips_stored(root / "out")


def kill_when(condition, what: str, book: Path, out: Path, prefect_env: dict[str, str]) -> None:
    """Start `bookcast make`, SIGKILL its whole process group as soon as `condition()` holds, and
    check what a crash may leave: no manifest, only complete MP3s under final names."""
    proc = cli_process(book, out, prefect_env, workers=2)
    wait_for(condition, proc, what)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "manifest.json").exists(), f"the run finished before it was killed ({what})"
    assert len(list(out.glob("*.mp3"))) < CHAPTERS
    for path in out.glob("*.mp3"):
        assert_complete_mp3(path)


def test_kill_the_cli_mid_book_then_rerun(reference, prefect_env: dict[str, str], tmp_path: Path) -> None:
    book, expected, total = reference
    out = tmp_path / "out"
    kill_when(lambda: clips_stored(out) >= 1, "the first clips were stored", book, out, prefect_env)
    assert 0 < clips_stored(out) < total

    rc, err = finish(cli_process(book, out, prefect_env, workers=2))
    assert rc == 0, err[-3000:]
    assert mp3s(out) == expected
    assert clips_stored(out) == total


@pytest.mark.slow
def test_kill_the_cli_while_exporting_then_rerun(reference, prefect_env: dict[str, str], tmp_path: Path) -> None:
    """Killed while the first chapter files are being written (temporary file or first MP3 seen)."""
    book, expected, _ = reference
    out = tmp_path / "out"
    kill_when(lambda: any(out.glob(".*.part")) or any(out.glob("*.mp3")), "the first export began",
              book, out, prefect_env)
    rc, err = finish(cli_process(book, out, prefect_env, workers=2))
    assert rc == 0, err[-3000:]
    assert mp3s(out) == expected


def _workers_of(pid: int) -> list:
    """Spawned synthesis workers among the process's children (not the resource tracker or the
    Prefect server)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(child)
    return found


def test_kill_one_worker_mid_book_then_rerun(reference, prefect_env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("psutil", reason="psutil finds the worker processes")
    book, expected, _ = reference
    out = tmp_path / "out"
    proc = cli_process(book, out, prefect_env, workers=2)
    wait_for(lambda: clips_stored(out) >= 1 and len(_workers_of(proc.pid)) == 2, proc,
             "two workers were running and clips were stored")
    victim = _workers_of(proc.pid)[0]
    victim.send_signal(signal.SIGKILL)
    rc, err = finish(proc)
    errors = [ln for ln in err.splitlines() if ln.startswith("bookcast: error:")]
    assert "Traceback" not in err, err[-3000:]
    assert rc == 0 or (rc == 2 and len(errors) == 1), (rc, err[-3000:])
    for path in out.glob("*.mp3"):
        assert_complete_mp3(path)

    rc, err = finish(cli_process(book, out, prefect_env, workers=2))
    assert rc == 0, err[-3000:]
    assert mp3s(out) == expected
