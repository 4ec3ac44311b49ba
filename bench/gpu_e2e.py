"""The product on a GPU, end to end: `bookcast make` with a full-size GPT-SoVITS voice.

gpu_check.py measures the decoders; this runs what a user runs. It builds a voice folder from
full-size random v2 weights in the official file formats (bench/peers/make_inputs.py: configs from
the shared fixtures' keys_full_v2.json, the EOS row scaled so that sentences end at random lengths,
`--max-sec` capping each), random BERT-large and HuBERT-base folders and a 5-s reference, writes a
generated English book, then runs `python -m flows.cli make` on it once per way — static batches,
static batches with CUDA graphs, continuous decoding — each into its own output folder (so no
clip is reused). Per way it prints the exit status, wall seconds, the line naming the worker pool
("1 GPU worker(s) 0" on one GPU), the most GPU memory in use during the run, the audio produced and
whether every MP3 decodes.
On a GPU machine the pool runs one worker per GPU; that spawn, the model loading on `cuda:0` and the
overlap of SoVITS with decoding are what no CPU test reaches.

    python bench/gpu_e2e.py --work /tmp/gpu-e2e                       # on the GPU machine (gpu_run.sh)
    python bench/gpu_e2e.py --work /tmp/gpu-e2e --dry-run             # the script itself, on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "bench" / "peers"))

WAYS = {  # way -> the voice's [settings] (cuda_graphs applies to static batches only)
    "static": {"batch_size": 16},
    "static + CUDA graphs": {"batch_size": 16, "cuda_graphs": True},
    "continuous": {"batch_size": 16, "continuous": True},
}
REF_TEXT = "It was the best of times, it was the worst of times."


def build_voice(work: Path, max_sec: int) -> Path:
    """A voice folder of full-size random weights (models shared between calls; made once)."""
    import numpy as np
    import soundfile
    from make_inputs import _hf_folders, _reference_wav, write_weights

    models = work / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (models / "sovits.pth").is_file():
        started = time.perf_counter()
        write_weights(models, eos_scale=2.0, max_sec=max_sec)
        soundfile.write(models / "ref.wav", np.asarray(_reference_wav()), 32000, subtype="PCM_16")
        _hf_folders(models)
        print(f"full-size random voice written in {time.perf_counter() - started:.0f} s")
    return models


def write_project(root: Path, models: Path, settings: dict, chapters: int, words: int) -> Path:
    from book_gen import write_english_book

    root.mkdir(parents=True, exist_ok=True)
    write_english_book(root / "book.md", chapters, words, title="GPU Check")
    voice = root / "voice"
    voice.mkdir(exist_ok=True)
    lines = ['name = "gpu-check"', f'gpt = "{models / "gpt.ckpt"}"', f'sovits = "{models / "sovits.pth"}"',
             f'bert = "{models / "chinese-roberta-wwm-ext-large"}"', f'hubert = "{models / "chinese-hubert-base"}"',
             "", "[[reference]]", f'audio = "{models / "ref.wav"}"', f'text = "{REF_TEXT}"', 'language = "en"', "",
             "[settings]", *(f"{k} = {json.dumps(v)}" for k, v in settings.items())]
    (voice / "voice.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "project.toml").write_text('[book]\nsource = "book.md"\n\n[voice]\nengine = "gpt-sovits"\npath = "voice"\n'
                                       '\n[mastering]\npreset = "acx"\n', encoding="utf-8")
    return root


class GpuMemory:
    """The most GPU memory in use while the block runs, above what was in use at its start (every
    process on the card: the run's worker is the only other one), sampled every 0.2 s; None
    without CUDA. Seen from outside, so the worker's own code is the one a user runs."""

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _used(self) -> float:
        import torch

        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20

    def __enter__(self) -> GpuMemory:
        import torch

        if torch.cuda.is_available():
            start = self._used()
            self.peak_mb = 0.0

            def sample() -> None:
                while not self._stop.wait(0.2):
                    self.peak_mb = max(self.peak_mb or 0.0, round(self._used() - start))

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def run_way(name: str, project: Path, out: Path, workers: str | None) -> dict:
    import soundfile

    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "flows.cli", "-v", "make", str(project), "--out", str(out)]
    cmd += ["--workers", workers] if workers else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    gpu = GpuMemory()
    started = time.perf_counter()
    with gpu:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - started
    log = done.stdout + done.stderr
    (out.parent.parent / f"{out.parent.name}.log").write_text(log, encoding="utf-8")  # <work>/<way>.log
    mp3s = sorted(out.glob("*.mp3"))
    seconds, broken = 0.0, []
    for mp3 in mp3s:
        try:
            info = soundfile.info(str(mp3))
            seconds += info.frames / info.samplerate
        except RuntimeError as exc:  # soundfile's error for a file it cannot decode
            broken.append(f"{mp3.name}: {exc}")
    said = [line.strip() for line in log.splitlines()
            if "worker" in line.lower() or "error" in line.lower()]
    return {"way": name, "rc": done.returncode, "wall_s": round(wall, 1), "gpu_peak_mb": gpu.peak_mb, "mp3s": len(mp3s),
            "audio_s": round(seconds, 1), "broken": broken, "said": said[:8], "tail": log.splitlines()[-4:]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/gpu-e2e"))
    ap.add_argument("--ways", default=",".join(WAYS))
    ap.add_argument("--chapters", type=int, default=2)
    ap.add_argument("--words", type=int, default=400, help="words per chapter")
    ap.add_argument("--max-sec", type=int, default=8, help="the longest sentence the voice may speak")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--dry-run", action="store_true",
                    help="check this script on a CPU: a few sentences, one worker process, no CUDA graphs")
    args = ap.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu_e2e: no CUDA device here (--dry-run checks the script on a CPU)")
    chapters, words, max_sec = (1, 30, 2) if args.dry_run else (args.chapters, args.words, args.max_sec)
    models = build_voice(args.work, max_sec)
    results = []
    for name in args.ways.split(","):
        if args.dry_run and "graphs" in name:
            continue
        slug = name.replace(" + ", "-").replace(" ", "-")
        project = write_project(args.work / slug, models, WAYS[name], chapters, words)
        result = run_way(name, project, args.work / slug / "out", "1" if args.dry_run else None)
        results.append(result)
        print(json.dumps(result, ensure_ascii=False), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    failed = [r["way"] for r in results if r["rc"] != 0 or r["broken"] or not r["mp3s"]]
    if failed:
        raise SystemExit(f"gpu_e2e: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
