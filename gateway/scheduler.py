"""One heap for every home's next deadline, instead of a timer per alert.

Homes re-register whenever their engine state changes; stale entries are
skipped lazily when popped, so rescheduling is O(log n) and never scans.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime


class DeadlineHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, str]] = []
        self._current: dict[str, datetime] = {}

    def schedule(self, home: str, deadline: datetime | None) -> None:
        """Set (or clear, with None) the one deadline this home is waiting for."""
        if deadline is None:
            self._current.pop(home, None)
            return
        if self._current.get(home) == deadline:
            return
        self._current[home] = deadline
        heapq.heappush(self._heap, (deadline, home))

    def maybe_due(self, until: datetime) -> bool:
        """A cheap test before `pop_due`: False means nothing is due; True means perhaps."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= until

    def peek(self) -> datetime | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, until: datetime) -> Iterator[tuple[datetime, str]]:
        """Yield (deadline, home) in time order for deadlines at or before `until`.

        The caller re-schedules each yielded home before asking for the next one,
        so a deadline that moves earlier (still <= until) is yielded again.
        """
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > until:
                return
            deadline, home = heapq.heappop(self._heap)
            del self._current[home]
            yield deadline, home

    def __len__(self) -> int:
        return len(self._current)

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and self._current.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
