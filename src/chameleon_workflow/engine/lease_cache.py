"""What a process learned about a UOW when it leased it, kept until the holder submits.

While a lease lasts nothing but its holder changes the UOW's attributes, so a submit that
reaches the process that made the checkout can skip re-reading them. The cache is only an
optimisation: every write it feeds is fenced in SQL (still ACTIVE, same lease, same holder),
and a miss, or a fenced write that matches nothing, falls back to reading the database.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..store.work import UowState


@dataclass(frozen=True)
class Leased:
    uow: UowState
    latest: dict[str, tuple[int, Any]]


class LeaseCache:
    """A bounded, thread-safe map from UOW id to what its checkout returned."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[uuid.UUID, Leased] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, entry: Leased) -> None:
        with self._lock:
            self._entries[entry.uow.id] = entry
            self._entries.move_to_end(entry.uow.id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def take(
        self, uow_id: uuid.UUID, holder_id: uuid.UUID, lease_id: uuid.UUID | None
    ) -> Leased | None:
        """Remove and return the entry if it is this holder's lease (any of its leases when
        ``lease_id`` is None); another holder's entry stays (a late retry must not evict it).
        """
        with self._lock:
            entry = self._entries.get(uow_id)
            if entry is None or entry.uow.lease_holder_id != holder_id:
                return None
            if lease_id is not None and entry.uow.lease_id != lease_id:
                return None
            return self._entries.pop(uow_id)
