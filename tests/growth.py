"""Growth checks instead of wall-clock limits: time a function at n and 4n in one run and compare.

A busy CI machine slows both sizes alike, so the ratio holds where an absolute limit would flake;
linear code grows ~4×, quadratic code 16×. Each size is timed over enough calls to take 20 ms or
more (the best of several interleaved rounds), so sub-millisecond work is not lost in timer noise.
"""
from __future__ import annotations

import gc
import time
from typing import Callable


def _calls_for(fn: Callable[[], object], at_least: float) -> int:
    """How many calls of `fn` take at least `at_least` seconds (doubling from one)."""
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= at_least:
            return calls
        calls *= 2


def _round(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def growth(make: Callable[[int], Callable[[], object]], n: int, factor: int = 4, rounds: int = 5) -> float:
    """How much slower the work gets when its input grows `factor`-fold: t(factor·n) / t(n).

    The two sizes are timed in alternating rounds and each keeps its best, so a burst of load
    from another process slows one round of each rather than skewing the ratio.
    """
    small, large = make(n), make(factor * n)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # a collection's cost follows the whole test process's heap, not this work
    try:
        small_calls, large_calls = _calls_for(small, 0.02), _calls_for(large, 0.02)
        best_small = best_large = float("inf")
        for _ in range(rounds):
            best_small = min(best_small, _round(small, small_calls))
            best_large = min(best_large, _round(large, large_calls))
    finally:
        if was_enabled:
            gc.enable()
    return best_large / best_small


LINEAR = 6.0  # a 4× input may take up to 6× as long (linear: 4×, quadratic: 16×)
