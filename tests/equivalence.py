"""Comparing the rows two databases hold after the same scenario, field by field.

Ids are random, so each UUID is replaced by a label: the scenario names what it created
(``uow:0``, ``lease:uow:0#1``, ``role:Triage``...) as the engine returns it; anything it
did not name is labelled in the order of a traversal that ignores unnamed ids, so both
databases label it alike. Request hashes (which hash ids) are labelled the same way. A
UUID written as 32 hex digits inside a JSON value keeps a ``(hex)`` mark, so a difference
of spelling between the databases still shows.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from chameleon_workflow.store.tables import (
    InteractionLog,
    LeaseOutcome,
    Memory,
    MemoryInjection,
    Uow,
    UowAttribute,
    table,
)

TABLES = {
    t.name: t
    for t in map(table, (Uow, UowAttribute, InteractionLog, MemoryInjection, LeaseOutcome, Memory))
}

# How rows of each table are paired when two snapshots are compared (and then ordered).
NATURAL_KEYS = {
    "uows": ("id",),
    "uow_attributes": ("uow_id", "key", "version"),
    "interaction_log": ("uow_id", "at", "event"),
    "memory_injections": ("uow_id", "injected_at"),
    "lease_outcomes": ("lease_id",),
    "memories": ("id",),
}

_DASHED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")

Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


class Labels:
    """Stable names for the values that differ between two runs: UUIDs and request hashes."""

    def __init__(self) -> None:
        self._names: dict[uuid.UUID, str] = {}
        self._hashes: dict[str, str] = {}
        self._taken: set[str] = set()

    def name(self, value: uuid.UUID, label: str) -> str:
        """Give ``value`` the label ``label`` (once; a label names one value)."""
        known = self._names.get(value)
        if known is not None:
            if known != label:
                raise ValueError(f"{value} is already {known}, not {label}")
            return label
        if label in self._taken:
            raise ValueError(f"label {label} already names another value")
        self._names[value] = label
        self._taken.add(label)
        return label

    def of(self, value: uuid.UUID) -> str:
        return self._names[value]

    def normalise(self, value: Any, *, assign: bool) -> Any:
        """``value`` with ids labelled, datetimes in UTC, containers normalised inside.

        Unnamed ids become ``uuid?`` unless ``assign``, which labels them in order.
        """
        if isinstance(value, uuid.UUID):
            return self._label(value, assign)
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC)
        if isinstance(value, str):
            return self._text(value, assign)
        if isinstance(value, Mapping):
            return {k: self.normalise(v, assign=assign) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.normalise(v, assign=assign) for v in value]
        return value

    def _label(self, value: uuid.UUID, assign: bool) -> str:
        label = self._names.get(value)
        if label is None:
            if not assign:
                return "uuid?"
            label = self.name(value, f"uuid#{len(self._names)}")
        return label

    def _text(self, text: str, assign: bool) -> str:
        if _HEX64.fullmatch(text):
            if text not in self._hashes:
                if not assign:
                    return "hash?"
                self._hashes[text] = f"hash#{len(self._hashes)}"
            return self._hashes[text]
        if _HEX32.fullmatch(text):
            return self._label(uuid.UUID(text), assign) + "(hex)"
        return _DASHED.sub(lambda m: self._label(uuid.UUID(m.group()), assign), text)


def _sort_key(row: Row, keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(_plain(row.get(k)) for k in keys) + (_plain(row),)


def _plain(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _select(t: sa.Table, null_kinds: bool) -> sa.Select[Any]:
    """All columns but serial ids (they depend on what else the database ever held); with
    ``null_kinds``, whether each JSON column holds SQL NULL (JSON ``null`` reads as None too)."""
    serial = {c.name for c in t.primary_key.columns if c.autoincrement is True}
    columns: list[Any] = [c for c in t.columns if c.name not in serial]
    if null_kinds:
        columns += [
            c.is_(None).label(f"{c.name} IS NULL") for c in t.columns if isinstance(c.type, sa.JSON)
        ]
    return sa.select(*columns)


def snapshot(db: sa.Engine, labels: Labels, *, null_kinds: bool = False) -> Snapshot:
    """Every row of the compared tables, normalised and ordered."""
    raw: dict[str, list[Row]] = {}
    with db.connect() as conn:
        for name, t in TABLES.items():
            raw[name] = [dict(r._mapping) for r in conn.execute(_select(t, null_kinds))]
    result: Snapshot = {}
    for name, rows in raw.items():
        keys = NATURAL_KEYS[name]
        # Order by what does not depend on unnamed ids, then label those ids in that order.
        rows.sort(key=lambda r: _sort_key(labels.normalise(r, assign=False), keys))
        labelled = [labels.normalise(r, assign=True) for r in rows]
        result[name] = sorted(labelled, key=lambda r: _sort_key(r, keys))
    return result


def differences(left: Snapshot, right: Snapshot, names: tuple[str, str]) -> list[str]:
    """Readable lines, one per differing field or unmatched row, table by table."""
    lines: list[str] = []
    for table_name, keys in NATURAL_KEYS.items():
        lines += _table_differences(table_name, keys, left[table_name], right[table_name], names)
    return lines


def _table_differences(
    table_name: str,
    keys: Sequence[str],
    left: list[Row],
    right: list[Row],
    names: tuple[str, str],
) -> Iterator[str]:
    by_key: dict[str, tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for side, rows in enumerate((left, right)):
        for row in rows:
            by_key[_plain([row.get(k) for k in keys])][side].append(row)
    for key, (ours, theirs) in sorted(by_key.items()):
        pairs = zip(keys, json.loads(key), strict=True)
        where = f"{table_name}[{', '.join(f'{k}={v}' for k, v in pairs)}]"
        for a, b in zip(ours, theirs, strict=False):
            for field in sorted(set(a) | set(b)):
                if a.get(field) != b.get(field):
                    yield (
                        f"{where}.{field}: {names[0]}={a.get(field)!r} {names[1]}={b.get(field)!r}"
                    )
        for row in ours[len(theirs) :]:
            yield f"{where}: only on {names[0]}: {row!r}"
        for row in theirs[len(ours) :]:
            yield f"{where}: only on {names[1]}: {row!r}"
