"""Pages of units of work for operators: what is where, who holds it, and why it failed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..domain.errors import InvalidInput, NotFound, UnknownActor
from ..store import actors, uow_list
from ..store.database import Database
from ..store.pagination import DEFAULT_LIMIT, Key, check_limit
from ..store.uow_list import Position, UowFilter
from .topology import Topology, TopologyCache


@dataclass(frozen=True)
class UowPage:
    """Up to a limit of UOWs, and the key (``uow_list.UOWS``) of the last when more follow."""

    items: list[dict[str, Any]]
    next_key: Key | None


def _utc(value: datetime | None, name: str) -> datetime | None:
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError as exc:
        raise InvalidInput(f"{name} is out of range once converted to UTC", field=name) from exc


def _summary(failure: Any, topo: Topology) -> dict[str, Any] | None:
    """The failure record with a readable ``code`` and ``reason`` whatever its kind.

    Records written before the one schema (``docs/api.md``) kept ``error_code`` and the
    kind's particulars at the top level; they are read as well.
    """
    if not isinstance(failure, dict):
        return None if failure is None else {"code": "unknown", "reason": str(failure)}
    kind = str(failure.get("kind", "unknown"))
    nested = failure.get("details")
    details = nested if isinstance(nested, dict) and "code" in failure else failure
    code = str(failure.get("code") or failure.get("error_code") or kind)
    reason = failure.get("reason")
    source_name = _interaction_name(topo, details.get("from_interaction_id"))
    if kind == "stale_token":
        reason = (
            f"waited {details.get('waited')} s in {source_name!r}, beyond its stale-token "
            f"limit of {details.get('limit')} s"
        )
    elif kind == "zombie":
        reason = (
            f"no heartbeat from the lease holder since {details.get('last_seen')} "
            f"(timeout {details.get('timeout_seconds')} s)"
        )
    elif reason is None and kind == "explicit":
        reason = f"reported by the worker with error_code {code!r}"
    return {
        "kind": kind,
        "code": code,
        "reason": str(reason) if reason is not None else kind,
        "role": failure.get("role"),
        "interaction": source_name,
        "record": failure,
    }


def _interaction_name(topo: Topology, value: Any) -> str | None:
    try:
        interaction_id = uuid.UUID(str(value))
    except ValueError:
        return None
    found = topo.interactions.get(interaction_id)
    return found.name if found else None


def _item(row: Any, topo: Topology) -> dict[str, Any]:
    role = topo.roles.get(row.current_role_id) if row.current_role_id else None
    return {
        "uow_id": row.id,
        "instance_id": row.instance_id,
        "parent_id": row.parent_id,
        "status": row.status,
        "interaction_id": row.current_interaction_id,
        "interaction": topo.interaction_name(row.current_interaction_id),
        "role_id": row.current_role_id,
        "role": role.name if role else None,
        "actor_id": row.lease_holder_id,
        "reclaim_count": row.reclaim_count,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "entered_at": row.entered_at,
        "failure": _summary(row.failure, topo),
    }


class UowListing:
    def __init__(self, db: Database, topologies: TopologyCache) -> None:
        self.db = db
        self.topologies = topologies

    def page(
        self, f: UowFilter, *, limit: int = DEFAULT_LIMIT, after: Key | None = None
    ) -> UowPage:
        """A page of UOWs newest-updated first, from after the key ``after`` (see
        ``uow_list.UOWS``); unknown ids in the filter are 404s."""
        check_limit(limit)
        at = Position(*after) if after is not None else None
        f = self._scoped(f)
        with self.db.connect() as conn:
            if f.lease_holder_id is not None and actors.get(conn, f.lease_holder_id) is None:
                a = f.lease_holder_id
                raise UnknownActor(f"actor {a} does not exist", id=str(a))
            rows = uow_list.page(conn, f, at, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_item(r, self.topologies.of_instance(r.instance_id)) for r in rows]
        last = rows[-1] if more else None
        return UowPage(items, (last.updated_at, last.id) if last else None)

    def _scoped(self, f: UowFilter) -> UowFilter:
        """Check the named instance, role and interaction exist; narrow to their instance."""
        instance_id = f.instance_id
        if instance_id is not None:
            self.topologies.of_instance(instance_id)
        if f.role_id is not None:
            instance_id = instance_id or self.topologies.of_role(f.role_id).id
        if f.interaction_id is not None:
            with self.db.connect() as conn:
                owner = uow_list.instance_of_interaction(conn, f.interaction_id)
            if owner is None:
                i = f.interaction_id
                raise NotFound(f"interaction {i} does not exist", id=str(i))
            instance_id = instance_id or owner
        return replace(
            f,
            instance_id=instance_id,
            updated_before=_utc(f.updated_before, "updated_before"),
            updated_after=_utc(f.updated_after, "updated_after"),
        )
