"""Vocoding finished sentences while the GPT goes on decoding (continuous batching on a GPU).

With continuous batching a sentence's semantic tokens are final the moment its row stops, while
the other slots keep decoding. On a GPU the T2S loop is bound by kernel launches and the host
sync of each step, not by the device's arithmetic, so SoVITS vocoding of the finished sentence can
run beside it: one background thread issues the vocoder's kernels on its own CUDA stream, and the
decoding thread never waits for a waveform. On a CPU both would share the same cores (the
decoder already uses them all), so there the vocoder runs inline, as before — overlapping is
the default on CUDA only.

A sentence's waveform depends only on its tokens, phones and its own seeded generator, so where
and when it is vocoded changes nothing (tested by forcing the thread on a CPU). Errors surface in
`results()`; leaving the `with` block early (a decoding error) drops vocoding not yet started.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

import numpy as np
import torch

log = logging.getLogger(__name__)


class VocoderQueue:
    """Vocode items as their tokens arrive: inline, or (overlap) on one background thread, on its
    own CUDA stream when the device is a GPU. Use as a context manager, then `results()`."""

    def __init__(self, vocode: Callable[[int, torch.Tensor], np.ndarray], device: torch.device,
                 overlap: bool | None = None) -> None:
        self._vocode = vocode
        self.overlap = device.type == "cuda" if overlap is None else overlap
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="bookcast-vocoder") if self.overlap else None
        self._stream = torch.cuda.Stream(device) if self.overlap and device.type == "cuda" else None
        self._pending: dict[int, Future[np.ndarray]] = {}
        self._audio: dict[int, np.ndarray] = {}

    def submit(self, item: int, tokens: torch.Tensor) -> None:
        """Vocode `item` from its finished `tokens` (a CPU tensor: no stream hand-over needed)."""
        if self._pool is None:
            self._audio[item] = self._vocode(item, tokens)
        else:
            self._pending[item] = self._pool.submit(self._run, item, tokens)

    def _run(self, item: int, tokens: torch.Tensor) -> np.ndarray:
        if self._stream is None:
            return self._vocode(item, tokens)
        with torch.cuda.stream(self._stream):
            return self._vocode(item, tokens)  # ends in a host copy, so the stream's work is done

    def results(self) -> dict[int, np.ndarray]:
        """Every item's waveform; re-raises the first vocoding error."""
        for item, future in self._pending.items():
            self._audio[item] = future.result()
        self._pending.clear()
        return self._audio

    def __enter__(self) -> VocoderQueue:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._pool is not None:
            if kind is not None:
                unstarted = sum(not f.running() and not f.done() for f in self._pending.values())
                log.debug("decoding failed; dropping %d vocoder jobs not yet started", unstarted)
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)
