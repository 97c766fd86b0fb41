"""Slowing down code guessing: a per-client limit on taps that lead nowhere.

Only answers 404 and 410 count, and once a client is over the limit only codes that fail
the code check are refused (429), without a store lookup. A code the service really issued
is always followed, so people behind one carrier NAT address are never blocked from their
links, while guessing (which can only produce unissued codes) stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class MissThrottle:
    """Fixed one-minute windows per client address, in this process's memory."""

    __slots__ = ("_clock", "_limit", "_max_clients", "_windows")

    def __init__(
        self,
        limit_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self._limit = limit_per_minute
        self._clock = clock
        self._max_clients = max_clients
        self._windows: dict[str, tuple[float, int]] = {}

    def blocked(self, client: str) -> bool:
        if self._limit <= 0:
            return False
        window = self._windows.get(client)
        if window is None:
            return False
        started, misses = window
        return misses >= self._limit and self._clock() - started < WINDOW_SECONDS

    def miss(self, client: str) -> None:
        if self._limit <= 0:
            return
        now = self._clock()
        started, misses = self._windows.get(client, (now, 0))
        if now - started >= WINDOW_SECONDS:
            started, misses = now, 0
        elif client not in self._windows and len(self._windows) >= self._max_clients:
            self._forget_old(now)
        self._windows[client] = (started, misses + 1)

    def _forget_old(self, now: float) -> None:
        self._windows = {
            client: window
            for client, window in self._windows.items()
            if now - window[0] < WINDOW_SECONDS
        }
        if len(self._windows) >= self._max_clients:
            # Flooded from more addresses than we keep: forgetting beats growing unbounded.
            self._windows.clear()
