"""Process-level memory settings shared by the CLI and the mastering worker processes."""
from __future__ import annotations


def tame_malloc() -> None:
    """Keep freed audio buffers from lingering in the process's resident memory (glibc only).

    glibc serves a buffer over its mmap threshold with mmap and returns it on free, but raises the
    threshold after each such free (up to 32 MB): later block-sized numpy buffers then come from
    per-thread heaps that rarely shrink, so a long run's RSS creeps far above what it uses. A
    fixed 1 MiB threshold keeps audio blocks on mmap (measurements: bench/README, "Scale").
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (fixing it also disables the dynamic rise)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
