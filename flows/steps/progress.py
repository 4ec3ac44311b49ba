"""A tiny in-process progress channel from tasks to whoever displays progress (the CLI).

Tasks run in threads of the flow's process, so a callback is enough; with no listener, reports
are dropped. Kept free of Prefect so the CLI can import it cheaply.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Event:
    kind: str  # "plan" | "sentences" | "chapter"
    chapter: int = 0
    sentences: int = 0
    audio_s: float = 0.0
    detail: dict | None = None


_listeners: list[Callable[[Event], None]] = []
_lock = threading.Lock()


def listen(callback: Callable[[Event], None]) -> Callable[[], None]:
    """Register `callback`; returns a function that unregisters it."""
    with _lock:
        _listeners.append(callback)

    def stop() -> None:
        with _lock:
            if callback in _listeners:
                _listeners.remove(callback)

    return stop


def report(event: Event) -> None:
    with _lock:
        listeners = list(_listeners)
    for callback in listeners:
        callback(event)
