"""Keyset pages: every list is read in the order of a unique key on immutable columns.

A page ends at the key of its last row; the next page starts strictly after it, so rows
inserted meanwhile never shift a page (offsets would) and no row is read twice. A list
declares its :class:`Keyset` once; the SQL of a page is :meth:`Keyset.page`, and the key a
client sends back is checked against the column types by :meth:`Keyset.parse` before it
reaches SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Connection, Select, literal, tuple_
from sqlalchemy.types import TypeDecorator

from ..domain.errors import InvalidInput

T = TypeVar("T")
V = TypeVar("V")
Key = tuple[Any, ...]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page(Generic[T]):
    """Up to ``limit`` items, and the key of the last one when more follow (else None)."""

    items: list[T]
    next_key: Key | None

    def map(self, f: Callable[[T], V]) -> Page[V]:
        return Page([f(i) for i in self.items], self.next_key)


@dataclass(frozen=True)
class Keyset:
    """A list's order: ``columns`` together unique and never updated, all one direction.

    ``name`` names the list (in cursors and messages).
    """

    name: str
    columns: tuple[ColumnElement[Any], ...]
    descending: bool = False

    def page(self, query: Select[Any], after: Key | None, limit: int) -> Select[Any]:
        """``query`` cut to the ``limit`` rows that follow ``after`` in this order."""
        if after is not None:
            # A row value compares the key as one: an index range on both databases.
            mine = tuple_(*self.columns)
            theirs = tuple_(*(literal(v, c.type) for v, c in zip(after, self.columns, strict=True)))
            query = query.where(mine < theirs if self.descending else mine > theirs)
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return query.order_by(*order).limit(limit)

    def fetch(
        self,
        conn: Connection,
        query: Select[Any],
        after: Key | None,
        limit: int,
        convert: Callable[[Any], T],
    ) -> Page[T]:
        """One page of ``query`` (which selects the key columns under their own names)."""
        check_limit(limit)
        rows = list(conn.execute(self.page(query, after, limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        last = self.key_of(rows[-1]) if more else None
        return Page([convert(r) for r in rows], last)

    def key_of(self, row: Any) -> Key:
        return tuple(row._mapping[c] for c in self.columns)

    def dump(self, key: Key) -> list[Any]:
        """The key as JSON values (times in ISO 8601 with their offset, UUIDs as hex)."""
        return [_dump(v) for v in key]

    def parse(self, values: Any) -> Key:
        """The key ``dump`` wrote, its types checked against the columns; else InvalidInput."""
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise _bad(self, "it does not hold this list's key")
        return tuple(_parse(self, v, _kind(c)) for v, c in zip(values, self.columns, strict=True))


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer between 1 and {MAX_LIMIT}", limit=limit)


def every(fetch: Callable[[Key | None], Page[T]], *, limit: int | None = None) -> list[T]:
    """The items of a list page after page: all of them, or the first ``limit``."""
    items: list[T] = []
    after: Key | None = None
    while limit is None or len(items) < limit:
        page = fetch(after)
        items.extend(page.items)
        if page.next_key is None:
            break
        after = page.next_key
    return items[:limit]


def _kind(column: ColumnElement[Any]) -> type:
    """The Python type of a key column (a decorated type's, such as ``UtcDateTime``)."""
    t = column.type
    return (t.impl_instance if isinstance(t, TypeDecorator) else t).python_type


def _dump(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, uuid.UUID):
        return value.hex
    return value


def _parse(keyset: Keyset, value: Any, kind: type) -> Any:
    try:
        if kind is datetime and isinstance(value, str):
            when = datetime.fromisoformat(value)
            if when.tzinfo is not None:
                return when.astimezone(UTC)
        elif kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(hex=value)
        elif kind is int and isinstance(value, int) and not isinstance(value, bool):
            if -(2**63) <= value < 2**63:
                return value
        elif kind is str and isinstance(value, str):
            return value
    except (ValueError, OverflowError) as exc:
        raise _bad(keyset, f"{value!r} is not a valid {kind.__name__}") from exc
    raise _bad(keyset, f"{value!r} is not a valid {kind.__name__}")


def _bad(keyset: Keyset, why: str) -> InvalidInput:
    return InvalidInput(
        f"cursor is malformed: {why} (list {keyset.name}); pass the next_cursor of the "
        "previous page unchanged, or leave cursor out to start from the beginning",
        field="cursor",
    )
