"""The `bookcast` command as a user runs it, in its own process: bad input answered before Prefect
starts, Ctrl-C and SIGKILL mid-run, resuming, and nothing left running afterwards.

These start the real CLI (`python -m flows.cli`) with a fresh PREFECT_HOME, so its own local
Prefect server, synthesis workers and reaper are exercised as in production.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from epub_factory import (
    build_epub,
    encryption_xml,
    forge_declared_size,
    rewrite_epub,
    sample_spec,
)

ROOT = Path(__file__).resolve().parents[1]


def env_for(tmp: Path, shared_server: bool = False) -> dict:
    """The CLI's environment: its own Prefect home and its own local server, or with
    `shared_server` the session's test server (needs the `prefect_harness` fixture). Only the
    tests about the server's own processes need their own: a server start is ~15 s a run."""
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect-home"), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    if shared_server:
        from prefect.settings import PREFECT_API_URL

        env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "flows.cli", *args]


def timed_run(argv: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return time.perf_counter() - started, proc


def long_book(path: Path, chapters: int = 8, sentences: int = 40) -> Path:
    text = ["---\ntitle: Lifecycle\nauthor: test\n---\n"]
    for c in range(1, chapters + 1):
        text.append(f"# Chapter {c}\n")
        for p in range(sentences // 4):
            text.append(" ".join(f"Paragraph {p} of chapter {c} says sentence number {s} out loud to the listener."
                                 for s in range(4)) + "\n")
    path.write_text("\n".join(text), encoding="utf-8")
    return path


# ---- bad input: one line, before Prefect ----------------------------------------------------------

def _drm(tmp: Path) -> list[str]:
    good = build_epub(tmp / "good.epub", sample_spec())
    enc = encryption_xml("http://www.w3.org/2001/04/xmlenc#aes256-cbc", "OEBPS/ch1.xhtml")
    return ["make", str(rewrite_epub(good, tmp / "drm.epub", add={"META-INF/encryption.xml": enc}))]


def _bomb(tmp: Path) -> list[str]:
    return ["make", str(forge_declared_size(build_epub(tmp / "bomb.epub", sample_spec()), "OEBPS/ch2.xhtml",
                                            0xF000_0000))]


def _missing(tmp: Path) -> list[str]:
    return ["make", str(tmp / "no-such-book.epub")]


def _preset(tmp: Path) -> list[str]:
    return ["make", str(build_epub(tmp / "ok.epub", sample_spec())), "--preset", "loud"]


@pytest.mark.parametrize("case,problem", [(_drm, "DRM"), (_bomb, "zip bomb"), (_missing, "not found"),
                                          (_preset, "unknown preset")], ids=["drm", "zip-bomb", "missing", "preset"])
def test_bad_input_is_answered_before_prefect_starts(tmp_path: Path, case, problem: str) -> None:
    env = env_for(tmp_path)
    baseline = min(timed_run(cli("--help"), env)[0] for _ in range(2))
    argv = case(tmp_path) + ["--out", str(tmp_path / "out")]
    took, proc = timed_run(cli(*argv), env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("bookcast: error: ") and problem in lines[0]
    assert "Traceback" not in proc.stderr and "prefect" not in proc.stderr.lower()
    # Like --help, not like a server start (which alone takes 20x longer here).
    assert took < 3.0 * baseline + 0.5, (took, baseline)
    assert not (tmp_path / "out").exists() and not (tmp_path / "prefect-home").exists()


# ---- a run stopped, killed, resumed -----------------------------------------------------------------

def _watch(proc: subprocess.Popen, out: Path, until, timeout: float = 120.0) -> dict[int, float]:
    """Note the CLI's descendants (pid → creation time) until `until(manifest)` holds."""
    seen: dict[int, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            seen.update({p.pid: p.create_time() for p in psutil.Process(proc.pid).children(recursive=True)})
        except psutil.Error:
            pass
        try:
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = None
        if manifest is not None and until(manifest):
            return seen
        time.sleep(0.1)
    raise AssertionError("the run never got there")


def _survivors(seen: dict[int, float], within: float = 8.0) -> list[str]:
    deadline = time.monotonic() + within
    while True:
        alive = []
        for pid, created in seen.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(" ".join(p.cmdline())[:100])
            except psutil.Error:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _delivered(manifest: dict) -> dict[int, str]:
    return {c["index"]: c["file"] for c in manifest["chapters"] if c["status"] == "ok"}


def test_sigkill_mid_run_leaves_no_process_and_a_manifest_that_the_resume_trusts(tmp_path: Path) -> None:
    book, out, env = long_book(tmp_path / "book.md"), tmp_path / "out", env_for(tmp_path)
    proc = subprocess.Popen(cli("make", str(book), "--out", str(out), "--workers", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = _watch(proc, out, lambda m: len(_delivered(m)) >= 2)
    assert len(seen) >= 4  # Prefect server, two synthesis workers, the reaper
    proc.kill()
    proc.wait()
    assert _survivors(seen) == []
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    done = _delivered(manifest)
    assert len(manifest["chapters"]) == 8 and len(done) >= 2  # the whole book, finished chapters recorded
    stamps = {i: (out / f).stat().st_mtime_ns for i, f in done.items()}
    rc = subprocess.run(cli("make", str(book), "--out", str(out), "--workers", "2"), env=env,
                        capture_output=True, text=True, timeout=300).returncode
    assert rc == 0
    assert all((out / done[i]).stat().st_mtime_ns == t for i, t in stamps.items())  # not exported again
    assert [c["status"] for c in json.loads((out / "manifest.json").read_text())["chapters"]] == ["ok"] * 8
    assert not list(out.glob(".*.part")) and not list((out / ".work" / "tmp").glob(".spill-*"))


def test_ctrl_c_stops_in_moments_with_one_line_and_the_run_resumes(prefect_harness, tmp_path: Path) -> None:
    book, out, env = long_book(tmp_path / "book.md"), tmp_path / "out", env_for(tmp_path, shared_server=True)
    proc = subprocess.Popen(cli("make", str(book), "--out", str(out), "--workers", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = _watch(proc, out, lambda m: len(_delivered(m)) >= 1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 15.0
    stops = [line for line in err.splitlines() if "stopping" in line]
    assert len(stops) == 1 and "Traceback" not in err and "Error" not in err, err
    assert _survivors(seen) == []
    # The resume of the first chapters (the whole book's resume is the SIGKILL test's; this keeps
    # the default suite short).
    resumed = subprocess.run(cli("make", str(book), "--out", str(out), "--workers", "2", "--chapters", "1-2"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [c["status"] for c in manifest["chapters"]][:2] == ["ok"] * 2 and len(manifest["chapters"]) == 8
    assert manifest["this_run"]["reused"] > 0  # the sentences synthesized before the stop
    for c in manifest["chapters"][:2]:  # delivered files are readable by others (a web server)
        assert (out / c["file"]).stat().st_mode & 0o777 == 0o644


def test_sigterm_to_the_main_process_stops_it_the_same_way(prefect_harness, tmp_path: Path) -> None:
    """What a service manager or `kill` sends: to bookcast alone, while Prefect's flow engine (which
    installs a SIGTERM handler of its own) is running the book."""
    book, out, env = long_book(tmp_path / "book.md"), tmp_path / "out", env_for(tmp_path, shared_server=True)
    proc = subprocess.Popen(cli("make", str(book), "--out", str(out), "--workers", "2"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = _watch(proc, out, lambda m: len(_delivered(m)) >= 1)
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 15.0, (proc.returncode, err)
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("  chapter ")]
    assert said == ["bookcast: stopping; run the same command again to resume"], err
    assert _survivors(seen) == []


def test_a_prefect_server_that_does_not_answer_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    env = {**env_for(tmp_path), "BOOKCAST_SERVER_TIMEOUT_S": "0"}
    book = long_book(tmp_path / "book.md", chapters=1, sentences=4)
    proc = subprocess.run(cli("make", str(book), "--out", str(tmp_path / "out")), env=env, capture_output=True,
                          text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "local Prefect server did not answer" in lines[0] and "PREFECT_API_URL" in lines[0]
