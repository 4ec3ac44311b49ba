"""bookcast's GPT-SoVITS engine side by side with its peers, on the same weights and inputs.

Each system runs in its own process (its own virtual environment; see bench/peers/): bookcast, the
reference (RVC-Boss/GPT-SoVITS, fetched), gpt-sovits-cpufast, gsv-tts-lite and genie-tts (ONNX
Runtime), all from PyPI via `bench/peers/setup.sh`. A system whose environment is missing or that
fails to load is skipped with its reason; the rest still run. All load the same full-size random v2
weights in the official formats (`bench/peers/make_inputs.py`; EOS unreachable, so every system
samples exactly the tokens asked for) and decode the same book sentences, calls interleaved system
by system (the order rotating each repetition) so that a busy machine slows all alike.

Measured, min and median of `--reps` repetitions:
- T2S at batch 1: ms per token (prefill included, as a sentence costs);
- T2S at batch 8 and 32: aggregate tokens/s (bookcast: static and continuous batching);
- SoVITS: real-time factor (wall s per audio s) for 4 s and 10 s of speech;
- each process' peak RSS.
Ratios are bookcast's median against the best peer's median (> 1 = bookcast faster), and with
`--baseline DIR` against another bookcast checkout (e.g. `git worktree add DIR <commit>`).

    bench/peers/setup.sh            # once: peers' venvs from PyPI (+ the reference checkout)
    python bench/peers/make_inputs.py --book ~/books/moby-dick.epub
    python bench/bench_peers.py --reps 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PEERS = REPO / "bench" / "peers"
VENVS = REPO / "bench" / ".peers"
SYSTEMS = ("bookcast", "reference", "cpufast", "gsvlite", "genie")
READY_TIMEOUT_S = 900.0


@dataclass
class System:
    """One driver process and what it answered."""

    name: str
    proc: subprocess.Popen
    info: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: set[str] = field(default_factory=set)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited (see {self.log_path})")
        return json.loads(line)

    @property
    def log_path(self) -> Path:
        return VENVS / "logs" / f"{self.name}.log"


def _python_for(name: str) -> Path | None:
    if name in ("bookcast", "baseline"):
        return Path(sys.executable)
    py = VENVS / name / "venv" / "bin" / "python"
    return py if py.is_file() else None


def start(names: list[str], work: Path, threads: int, device: str,
          baseline: Path | None = None) -> tuple[list[System], dict[str, str]]:
    """Start every available driver; wait for each `ready` line. Returns the systems and the skips.
    `baseline`: another bookcast checkout, measured as the system "baseline"."""
    if baseline is not None:
        names = [*names, "baseline"]
    (VENVS / "logs").mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    pending: list[System] = []
    for name in names:
        py, driver = _python_for(name), PEERS / f"driver_{'bookcast' if name == 'baseline' else name}.py"
        if py is None or not driver.is_file():
            skipped[name] = f"not set up (run bench/peers/setup/{name}.sh)"
            continue
        log = (VENVS / "logs" / f"{name}.log").open("w")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if name == "baseline":
            env["BOOKCAST_REPO"] = str(baseline)
        proc = subprocess.Popen([str(py), str(driver), "--work", str(work), "--threads", str(threads),
                                 "--device", device], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, text=True, env=env, cwd=REPO)
        pending.append(System(name, proc))
    systems: list[System] = []
    for system in pending:  # loads one after another would be slower; they load side by side
        assert system.proc.stdout is not None
        line = system.proc.stdout.readline()
        try:
            info = json.loads(line) if line else {}
        except json.JSONDecodeError:
            info = {}
        if not info.get("ready"):
            system.proc.kill()
            tail = system.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            skipped[system.name] = f"failed to load: {tail[0][:160]}"
            continue
        system.info = info
        systems.append(system)
    return systems, skipped


def _record(system: System, key: str, value: float) -> None:
    system.samples.setdefault(key, []).append(value)


def measure(systems: list[System], reps: int, tokens: int, batches: list[int], sovits_seconds: list[float],
            count: int) -> None:
    """Interleaved repetitions; each repetition rotates which system goes first."""
    for system in systems:  # warm-up: allocations, kernels, lazy imports
        system.ask({"op": "t2s", "items": [0], "tokens": 4})
        system.ask({"op": "sovits", "item": 0, "tokens": 25})
    for rep in range(reps):
        order = systems[rep % len(systems):] + systems[: rep % len(systems)]
        for batch in batches:
            items = [i % count for i in range(batch)]
            for system in order:
                modes = ["static"] + (["continuous"] if batch > 1 and "continuous" in system.info.get("modes", []) else [])
                for mode in modes:
                    answer = system.ask({"op": "t2s", "items": items, "tokens": tokens, "mode": mode})
                    if "error" in answer:
                        system.notes.add(f"t2s b{batch}: {answer['error'][:120]}")
                        continue
                    got = answer["tokens"]
                    if any(n != tokens for n in got):
                        system.notes.add(f"batch {batch} rows got {min(got)}–{max(got)} tokens, not {tokens}")
                    key = f"t2s_b{batch}" + ("" if mode == "static" else "_cont")
                    value = 1000 * answer["seconds"] / max(1, sum(got)) if batch == 1 else sum(got) / answer["seconds"]
                    _record(system, key, value)
        for seconds in sovits_seconds:
            for system in order:
                answer = system.ask({"op": "sovits", "item": rep % count, "tokens": round(25 * seconds)})
                if "error" in answer:
                    system.notes.add(f"sovits: {answer['error'][:120]}")
                    continue
                _record(system, f"sovits_{seconds:g}s", answer["seconds"] / (answer["samples"] / answer["rate"]))
        print(f"  repetition {rep + 1}/{reps} done", flush=True)
    for system in systems:
        answer = system.ask({"op": "rss"})
        system.info["peak_rss_mb"] = answer.get("peak_rss_mb", float("nan"))


def report(systems: list[System], skipped: dict[str, str], batches: list[int], sovits_seconds: list[float]) -> dict:
    """Print one table per metric and bookcast's ratio against the best peer; return it all as a dict."""
    metrics = [("t2s_b1", "T2S batch 1, ms/token (lower is better)", False)]
    for batch in batches:
        if batch > 1:
            metrics.append((f"t2s_b{batch}", f"T2S batch {batch}, aggregate tokens/s (higher is better)", True))
    metrics += [(f"sovits_{s:g}s", f"SoVITS {s:g} s of speech, RTF (lower is better)", False) for s in sovits_seconds]
    out: dict[str, Any] = {"skipped": skipped, "metrics": {}}
    for key, title, higher in metrics:
        print(f"\n{title}")
        rows = []
        for system in systems:
            for suffix, label in (("", ""), ("_cont", " continuous")):
                values = system.samples.get(key + suffix)
                if values:
                    rows.append((system.name + label, min(values) if not higher else max(values),
                                 statistics.median(values), len(values)))
        for name, best, median, n in rows:
            print(f"  {name:<22} best {best:9.2f}   median {median:9.2f}   (n={n})")
        entry: dict[str, Any] = {"rows": rows}
        ours = [r for r in rows if r[0].startswith("bookcast")]
        peers = [r for r in rows if not r[0].startswith(("bookcast", "baseline"))]
        for base in (r for r in rows if r[0] == "baseline"):
            for name, _, median, _ in ours:
                ratio = median / base[2] if higher else base[2] / median
                print(f"  -> {name} vs baseline: {ratio:.2f}× (median)")
                entry[f"ratio {name} vs baseline"] = ratio
        if ours and peers:
            best_peer = max(peers, key=lambda r: r[2]) if higher else min(peers, key=lambda r: r[2])
            for name, _, median, _ in ours:
                ratio = median / best_peer[2] if higher else best_peer[2] / median
                print(f"  -> {name} vs best peer ({best_peer[0]}): {ratio:.2f}× (median)")
                entry[f"ratio {name}"] = ratio
        out["metrics"][key] = entry
    print("\npeak RSS per process:")
    for system in systems:
        print(f"  {system.name:<12} {system.info.get('peak_rss_mb', float('nan')):7.0f} MB   "
              f"(version {system.info.get('version') or '-'}, load {system.info.get('load_s', 0):.1f} s)")
        for note in sorted(system.notes):
            print(f"    note: {note}")
    for name, why in skipped.items():
        print(f"  {name:<12} skipped: {why}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=VENVS / "work")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=100, help="tokens per row (25 per second of speech)")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--sovits-seconds", default="4,10")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--baseline", type=Path, help="another bookcast checkout (e.g. a git worktree of an "
                    "earlier commit), measured side by side as 'baseline'")
    args = ap.parse_args(argv)
    if not (args.work / "inputs.npz").is_file():
        raise SystemExit(f"{args.work}: no inputs; run python bench/peers/make_inputs.py first")
    import numpy as np

    count = int(np.load(args.work / "inputs.npz")["count"])
    batches = [int(b) for b in args.batches.split(",")]
    sovits_seconds = [float(s) for s in args.sovits_seconds.split(",")]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    systems, skipped = start(args.systems.split(","), args.work, args.threads, args.device, args.baseline)
    print(f"{len(systems)} systems loaded in {time.perf_counter() - t0:.0f} s: "
          + ", ".join(f"{s.name} {s.info.get('version') or ''}".strip() for s in systems))
    for name, why in skipped.items():
        print(f"  skipped {name}: {why}")
    try:
        measure(systems, args.reps, args.tokens, batches, sovits_seconds, count)
    finally:
        for system in systems:
            try:
                system.ask({"op": "quit"}) if system.proc.poll() is None else None
            except (OSError, RuntimeError, json.JSONDecodeError):
                pass
            system.proc.wait(timeout=30)
    result = report(systems, skipped, batches, sovits_seconds)
    result.update(load_before=load_before, load_after=os.getloadavg(), cpus=os.cpu_count(), threads=args.threads,
                  tokens=args.tokens, reps=args.reps, seconds=time.perf_counter() - t0)
    print(f"\nload average before {load_before[0]:.2f}, after {result['load_after'][0]:.2f}; "
          f"{os.cpu_count()} CPUs, {args.threads} threads per system; {time.perf_counter() - t0:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
