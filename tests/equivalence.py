"""Driving a scenario, and comparing the rows two databases hold after it, field by field.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.domain.errors import LeaseLost
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.tables import (
    InteractionLog,
    LeaseOutcome,
    Memory,
    MemoryInjection,
    Uow,
    UowAttribute,
    table,
)
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

if TYPE_CHECKING:
    from chameleon_workflow.engine.checkout import Checkout

WORKFLOW = fixture_text("routing_workflow.yml")

U = table(Uow)
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
        if is_dataclass(value) and not isinstance(value, type):
            return {type(value).__name__: self.normalise(asdict(value), assign=assign)}
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


class Driver:
    """One workflow instance driven through the engine, naming what it creates.

    ``engine`` sets up, checks out and sweeps; ``submitter`` submits, fails and heartbeats.
    Everything the engine returns is kept, in order, in ``seen``.
    """

    def __init__(self, engine: Engine, submitter: Engine, clock: FakeClock) -> None:
        self.engine = engine
        self.submitter = submitter
        self.clock = clock
        self.labels = Labels()
        self.seen: list[tuple[str, Any]] = []
        self._uows = 0
        self._leases: dict[uuid.UUID, int] = {}

    def instantiate(self, text: str = WORKFLOW, **context: Any) -> None:
        self.flow = Flow(self.engine, text, context or {"amount": 10})
        self.actor = self.flow.actor
        name = self.labels.name
        name(self.flow.instance_id, "instance")
        name(self.actor, "actor:worker")
        for role, role_id in self.flow.roles.items():
            name(role_id, f"role:{role}")
        for entry in self.engine.instances.describe(self.flow.instance_id)["interactions"]:
            name(entry["interaction"].id, f"ix:{entry['interaction'].name}")
        self._new_uow(self.flow.first_uow)

    def _new_uow(self, uow_id: uuid.UUID) -> uuid.UUID:
        self.labels.name(uow_id, f"uow:{self._uows}")
        self._uows += 1
        return uow_id

    def new_actor(self, name: str) -> uuid.UUID:
        actor = self.flow.new_actor(name)
        self.labels.name(actor, f"actor:{name}")
        return actor

    def genesis(self, **context: Any) -> uuid.UUID:
        return self._new_uow(self.flow.genesis(**context))

    def checkout(self, role: str, actor: uuid.UUID | None = None) -> Checkout | None:
        self._check_no_ties()
        c = self.engine.runtime.checkout(actor or self.actor, self.flow.roles[role])
        seen = None
        if c is not None:
            k = self._leases[c.uow_id] = self._leases.get(c.uow_id, 0) + 1
            self.labels.name(c.lease_id, f"lease:{self.labels.of(c.uow_id)}#{k}")
            # Children share created_at: the engine lists them in the order of their ids.
            kids = sorted(c.children, key=lambda k: self.labels.of(k["uow_id"]))
            seen = asdict(c) | {"children": kids}
        self.seen.append((f"checkout {role}", seen))
        return c

    def _check_no_ties(self) -> None:
        """Fail if two waiting UOWs of one queue entered it at the same instant: which one a
        checkout takes is then up to the database, and the scenario is not deterministic."""
        waiting = U.c.status.in_(("PENDING", "FAILED"))
        ties = (
            sa.select(U.c.current_interaction_id, U.c.status, U.c.entered_at)
            .where(waiting)
            .group_by(U.c.current_interaction_id, U.c.status, U.c.entered_at)
            .having(sa.func.count() > 1)
        )
        with self.engine.db.engine.connect() as conn:
            tied = conn.execute(ties).all()
        assert not tied, f"the scenario leaves UOWs tied on entered_at: {tied}"

    def take(self, role: str, actor: uuid.UUID | None = None) -> Checkout:
        c = self.checkout(role, actor)
        assert c is not None, f"expected work for {role}"
        return c

    def submit(
        self,
        c: Checkout,
        attributes: dict[str, Any],
        *,
        children: list[Any] | None = None,
        reasoning: str | None = None,
        actor: uuid.UUID | None = None,
        with_lease: bool = True,
    ) -> Any:
        out = self.submitter.runtime.submit(
            c.uow_id, actor or self.actor, attributes, reasoning=reasoning,
            lease_id=c.lease_id if with_lease else None, children=children,
        )  # fmt: skip
        parent = self.labels.of(c.uow_id)
        for i, child in enumerate(out.children):
            self.labels.name(child, f"{parent}.{i}")
        if out.learned_memory_id is not None:
            key = attributes["_learned_rule"]["key"]
            self.labels.name(out.learned_memory_id, f"memory:learned/{key}")
        self.seen.append(("submit", asdict(out)))
        return out

    def fail(self, c: Checkout, code: str, details: Any = None) -> Any:
        out = self.submitter.runtime.fail(
            c.uow_id, self.actor, code, details=details, lease_id=c.lease_id
        )
        self.seen.append(("fail", asdict(out)))
        return out

    def heartbeat(self, c: Checkout) -> None:
        at = self.submitter.runtime.heartbeat(c.uow_id, self.actor, c.lease_id)
        self.seen.append(("heartbeat", at))

    def refused(self, what: str, call: Callable[[], Any]) -> None:
        """``call`` raises LeaseLost; its message is kept (it says what became of the lease)."""
        with pytest.raises(LeaseLost) as lost:
            call()
        self.seen.append((f"refused {what}", str(lost.value)))

    def sweep(self, **options: Any) -> dict[str, Any]:
        run = self.engine.maintenance.zombie_sweep(**options)
        self.seen.append(("zombie sweep", {"counts": run.counts, "sample": run.sample}))
        return run.counts

    def stale_sweep(self, **options: Any) -> dict[str, Any]:
        run = self.engine.maintenance.stale_token_sweep(**options)
        self.seen.append(("stale token sweep", {"counts": run.counts, "sample": run.sample}))
        return run.counts

    def remember(
        self, role: str, key: str, value: Any, actor: uuid.UUID | None = None
    ) -> uuid.UUID:
        scope = MemoryScope.GLOBAL if actor is None else MemoryScope.ACTOR
        row = self.engine.memory.write(
            self.flow.roles[role], key=key, value=value, scope=scope, actor_id=actor
        )
        owner = "" if actor is None else f"/{self.labels.of(actor)}"
        self.labels.name(row.id, f"memory:{role}/{key}{owner}")
        self.seen.append(("memory write", row))
        return row.id

    def where(self, uow_id: uuid.UUID) -> tuple[str, str | None]:
        return self.flow.where(uow_id)
