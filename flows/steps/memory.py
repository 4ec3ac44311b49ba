"""Process-level memory settings shared by the CLI and the mastering worker processes."""
from __future__ import annotations

WORKER_MMAP_THRESHOLD = 32 << 20  # a mastering worker: block buffers reused from the heap
WORKER_TRIM_THRESHOLD = 64 << 20  # ... and what it frees beyond 64 MB goes back to the system


def tame_malloc(mmap_threshold: int = 1 << 20, trim_threshold: int | None = None) -> None:
    """Keep freed audio buffers from lingering in the process's resident memory (glibc only).

    glibc serves a buffer over its mmap threshold with mmap and returns it on free, but raises the
    threshold after each such free (up to 32 MB): later block-sized numpy buffers then come from
    per-thread heaps that rarely shrink, so a long run's RSS creeps far above what it uses. A
    fixed 1 MiB threshold keeps audio blocks on mmap in the CLI's many-threaded process
    (measurements: bench/README, "Scale").

    A mastering worker is the opposite case: one chapter at a time, its audio on one thread, the
    same few block sizes allocated and freed thousands of times a chapter. On mmap, every one of them
    is fresh pages the kernel must fault in and zero — 20 % of a whole book's CPU went to the kernel
    that way (Moby-Dick: 235 of 1,171 CPU-s; one 33-minute chapter: 2.3 M page faults). Workers
    therefore fix a 32 MB threshold (`WORKER_MMAP_THRESHOLD`), so those buffers are reused from the
    heap, and a trim threshold that hands free heap beyond it back: the same peak memory, measured.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (fixing it also disables the dynamic rise)
        if trim_threshold is not None:
            libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
