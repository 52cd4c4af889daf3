"""What a batch move is: the rows it picks, what they become, and what it reports."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement

from ...domain.enums import UowStatus

# Where the failure record a batch writes keeps the interaction the UOW came from
# (RETURNING sees only the new row, so the origin travels in the record).
ORIGIN_PATH = ("details", "from_interaction_id")


@dataclass(frozen=True)
class BatchMove:
    """One batch to move: which UOWs (``condition`` on ``uows``) and what they become."""

    condition: ColumnElement[bool]
    values: Mapping[str, Any]
    event: str
    from_status: UowStatus
    now: datetime
    limit: int
    order_by: tuple[Any, ...] = ()  # the order of an index the condition can use


@dataclass(frozen=True)
class Moved:
    count: int
    parent_ids: list[uuid.UUID]
    by_status: dict[str, int]

    @classmethod
    def of(cls, rows: Sequence[Any]) -> Moved:
        """From rows of (parent_id, status), one per UOW moved."""
        parents = sorted({r.parent_id for r in rows if r.parent_id is not None})
        return cls(len(rows), parents, dict(Counter(r.status for r in rows)))
