"""The proofing studio: how long `bookcast studio` takes to answer, and how long a re-take of one
sentence takes to become playable — against the issue's targets (start < 5 s on the sample book
without the voice load; a re-take of one espeak sentence playable in < 1 s).

The sample project is copied and made once (`bookcast make`, a fresh Prefect home), then
`bookcast studio` is started as a user would (a subprocess) and timed to its first answer of the
book (without the voice) and of a chapter (with the voice loaded, all clips listed). Re-takes are
timed over HTTP, request to playable clip bytes, min/median of N.

    python bench/bench_studio.py [--retakes 10]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def call(url: str, body: dict | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as reply:  # a local probe of our own server
        return reply.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retakes", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-studio-"))
    project, out = tmp / "project", tmp / "out"
    shutil.copytree(ROOT / "projects" / "bilingual-sample", project)
    env = {**os.environ, "PREFECT_HOME": str(tmp / "prefect")}
    env.pop("PREFECT_API_URL", None)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flows.cli", "make", str(project), "--out", str(out)], env=env, check=True,
                   capture_output=True)
    print(f"make (sample book, fresh Prefect home): {time.perf_counter() - t:.1f} s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "studio", str(project), "--out", str(out),
                             "--port", str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                call(f"{base}/api/book")
                break
            except OSError:
                if proc.poll() is not None or time.perf_counter() - started > 60:
                    raise SystemExit("the studio did not start")
                time.sleep(0.02)
        ready = time.perf_counter() - started
        call(f"{base}/api/chapter/1")
        chapter = time.perf_counter() - started
        print(f"studio answers (process start to /api/book): {ready:.2f} s   (target < 5 s)")
        print(f"first chapter listed (voice loaded, clips checked): {chapter:.2f} s")
        times = []
        for _ in range(args.retakes):
            t = time.perf_counter()
            reply = json.loads(call(f"{base}/api/retake", {"chapter": 1, "line": 2}))
            audio = call(f"{base}/api/clip/{reply['key']}")
            times.append(time.perf_counter() - t)
            assert audio[:4] == b"fLaC"
        print(f"re-take to playable clip, {len(times)} takes: min {min(times) * 1000:.0f} ms, "
              f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms   (target < 1 s)")
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
