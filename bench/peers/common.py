"""The driver side of `bench_peers.py`: one long-lived process per system, spoken to in JSON lines.

A driver runs in its system's own virtual environment, so it may import nothing of bookcast and
nothing but numpy besides its system. It loads the shared weights once, prints one `ready` line,
then answers requests on stdin, one JSON object per line, each with one JSON line on stdout:

- `{"op": "t2s", "items": [i, ...], "tokens": T, "mode": "static"}` -> `{"seconds": s, "tokens": [n, ...]}`:
  decode sentences i of inputs.npz as ONE batch (prompt = the reference phones/BERT + 75 prompt
  tokens, the pipeline's sampling defaults), each stopping after T generated tokens; `seconds` is
  the wall time from phone ids + BERT features to every row's tokens; `tokens` what each row got.
  `mode` "continuous" is accepted only by drivers that report `"modes"` containing it.
- `{"op": "sovits", "item": i, "tokens": T}` -> `{"seconds": s, "samples": n, "rate": r}`: the
  first T of `codes` through SoVITS with sentence i's phones and the reference clip's style.
- `{"op": "rss"}` -> `{"peak_rss_mb": x}` (this process' peak resident set);
- `{"op": "quit"}`.

An error answers `{"error": "..."}` and the driver goes on. Everything the system prints itself is
sent to stderr, so stdout carries only protocol lines.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SAMPLING = {"top_k": 5, "top_p": 1.0, "temperature": 1.0, "repetition_penalty": 1.35}


class Inputs:
    """The shared inputs: weights' paths and the arrays of inputs.npz."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.gpt = work / "gpt.ckpt"
        self.sovits = work / "sovits.pth"
        self.ref_wav_path = work / "ref.wav"
        self.ref_text = (work / "ref.txt").read_text(encoding="utf-8").strip()
        self.bert_dir = work / "chinese-roberta-wwm-ext-large"
        self.hubert_dir = work / "chinese-hubert-base"
        data = np.load(work / "inputs.npz")
        self.count = int(data["count"])
        self.phones = [data[f"phones_{i}"] for i in range(self.count)]  # int64 (N_i,)
        self.bert = [data[f"bert_{i}"] for i in range(self.count)]  # float32 (1024, N_i)
        self.ref_phones = data["ref_phones"]  # int64 (24,)
        self.ref_bert = data["ref_bert"]  # float32 (1024, 24)
        self.prompt = data["prompt"]  # int64 (75,)
        self.codes = data["codes"]  # int64 (1000,)
        self.ref_wav = data["ref_wav"]  # float32 (n,) at 32 kHz

    def full_phones(self, i: int) -> np.ndarray:
        """Reference phones + sentence phones, as the pipeline feeds the GPT."""
        return np.concatenate([self.ref_phones, self.phones[i]])

    def full_bert(self, i: int) -> np.ndarray:
        return np.concatenate([self.ref_bert, self.bert[i]], axis=1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(name: str, load: Callable[[Inputs, argparse.Namespace], Any],
          t2s: Callable[[Any, list[int], int, str], list[int]],
          sovits: Callable[[Any, int, int], tuple[int, int]],
          modes: tuple[str, ...] = ("static",), version: str = "") -> None:
    """Parse the common arguments, load, then answer requests until `quit` or end of input.

    `load(inputs, args)` returns the system's state; `t2s(state, items, tokens, mode)` returns the
    tokens each row got; `sovits(state, item, tokens)` returns (samples, rate). Timing is done here.
    """
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    out = sys.stdout
    sys.stdout = sys.stderr  # the system's own prints must not corrupt the protocol
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    inputs = Inputs(args.work)
    with torch.inference_mode():
        state = load(inputs, args)
    _send(out, {"ready": True, "name": name, "version": version, "load_s": time.perf_counter() - t0,
                "modes": list(modes), "threads": torch.get_num_threads()})
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "quit":
                break
            if op == "rss":
                _send(out, {"peak_rss_mb": _peak_rss_mb()})
                continue
            with torch.inference_mode():
                sync()
                t = time.perf_counter()
                if op == "t2s":
                    got = t2s(state, [int(i) for i in req["items"]], int(req["tokens"]), req.get("mode", "static"))
                    sync()
                    _send(out, {"seconds": time.perf_counter() - t, "tokens": [int(n) for n in got]})
                elif op == "sovits":
                    samples, rate = sovits(state, int(req["item"]), int(req["tokens"]))
                    sync()
                    _send(out, {"seconds": time.perf_counter() - t, "samples": int(samples), "rate": int(rate)})
                else:
                    _send(out, {"error": f"unknown op {op!r}"})
        except Exception as exc:  # noqa: BLE001 - reported to the orchestrator, which decides
            traceback.print_exc(file=sys.stderr)
            _send(out, {"error": f"{type(exc).__name__}: {exc}"})


def _send(out: Any, obj: dict) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()
