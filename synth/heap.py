"""Process memory of a synthesis worker: the C heap and oneDNN's primitive cache.

A worker lives for a whole book, thousands of sentences, and every sentence's models see tensors of
a new size. Two things then keep memory the worker no longer uses, and neither is Python's:

- glibc's heap. Tensors of 1–32 MB (KV caches, vocoder activations; glibc's mmap threshold rises
  to 32 MB after the first large free) come from per-thread heaps that glibc rarely shrinks, so
  their freed pages stay resident. `release_free_heap` hands them back.
- oneDNN's primitive cache. PyTorch runs a CPU convolution through a oneDNN primitive built for
  its exact shapes, and oneDNN keeps the last 1,024 of them with their buffers. SoVITS builds about
  a hundred per clip length, and a book's clip lengths almost never repeat, so the cache fills with
  primitives that are never used again. `bound_onednn_cache` keeps it small.

Measured (bench/README.md, "Worker memory"): full-size SoVITS alone, 100 clips of 60–360 frames,
levels off at 1.6 GB with a trim after each clip and at 0.63 GB with the trim and a 64-primitive
cache (past 5.8 GB after 24 clips with neither), in the same time. A whole full-size worker over 96
Moby-Dick sentences (72 clip lengths, trimmed after each batch as the pool always did): between
batches 3.0 → 4.0 GB and still climbing, peak 6.06 GB before; level at 3.0–3.2 GB, peak 4.19 GB
with both; wall 0.98×.
"""
from __future__ import annotations

import os

ONEDNN_CACHE_CAPACITY = 64  # primitives: a GPT step's few shapes plus change; a clip's own are never reused
_ONEDNN_CACHE_VAR = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def release_free_heap() -> None:
    """Return free heap memory to the system (glibc's malloc_trim; elsewhere nothing to do).

    About 20 ms on a worker's heap. Measured on the tiny test voice over The Waste Land's 478
    sentences, three passes: RSS 1.42 → 1.51 → 1.56 GB at each pass's end without it, 1.19–1.22 GB
    with a trim after every batch. A real voice's vocoder needs one after every clip (see above).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def bound_onednn_cache(capacity: int = ONEDNN_CACHE_CAPACITY) -> None:
    """Cap oneDNN's primitive cache unless the user already set ONEDNN_PRIMITIVE_CACHE_CAPACITY.

    oneDNN reads the variable when it builds its first primitive, not when torch is imported, so
    this works until the process's first CPU convolution or packed product; after that it changes
    nothing (harmless).
    """
    os.environ.setdefault(_ONEDNN_CACHE_VAR, str(capacity))
