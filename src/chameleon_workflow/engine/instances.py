"""Instances, genesis, actors and the read side of the runtime."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from ..domain.enums import ActorType, Direction, InstanceStatus, RoleType, UowStatus
from ..domain.errors import (
    InstancePaused,
    InvalidInput,
    UnknownActor,
    UnknownInstance,
    UnknownRole,
    UnknownUow,
)
from ..domain.failures import FailureRecord
from ..domain.guardians import choose_route
from ..store import actors, pause, uows
from ..store import instances as store
from ..store.database import Database
from ..store.instances import InstanceRow, RoleRow
from ..store.pagination import Key, Page
from ..store.records import ActorRecord, AttributeVersion, TransitionRecord, UowRecord
from ..store.uow_list import UowFilter
from .clock import Clock, utcnow
from .records import attribute_rows, check_attributes, log_row, metadata, new_uow
from .templates import TemplateService
from .topology import Topology, TopologyCache
from .uow_listing import DEFAULT_LIMIT, UowListing, UowPage


@dataclass(frozen=True)
class Genesis:
    instance: InstanceRow
    uow_id: uuid.UUID
    status: UowStatus
    interaction: str | None


@dataclass(frozen=True)
class ActorDetail:
    """An actor and the roles it is assigned to."""

    actor: ActorRecord
    role_ids: list[uuid.UUID]


@dataclass(frozen=True)
class UowDetail:
    """A UOW with its place by name, the age of its heartbeat, its latest attributes and
    its children."""

    uow: UowRecord
    interaction: str | None
    role: str | None
    heartbeat_age_seconds: float | None
    attributes: dict[str, Any]
    children: list[UowRecord]


@dataclass(frozen=True)
class UowHistory:
    """Every attribute version and every transition of a UOW, oldest first."""

    uow_id: uuid.UUID
    attributes: list[AttributeVersion]
    transitions: list[TransitionRecord]


class InstanceService:
    def __init__(
        self,
        db: Database,
        topologies: TopologyCache,
        templates: TemplateService,
        clock: Clock = utcnow,
    ) -> None:
        self.db = db
        self.topologies = topologies
        self.templates = templates
        self.clock = clock

    # --- instances ---------------------------------------------------------------------

    def instantiate(
        self,
        template_id: uuid.UUID,
        initial_context: Any,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Genesis:
        """Clone a template version into a new instance and run genesis, in one transaction."""
        context = check_attributes(initial_context, "initial_context")
        template = self.templates.get(template_id)
        defn = self.templates.definition(template)
        now = self.clock()
        with self.db.begin() as conn:
            instance = store.clone_template(
                conn,
                template_id=template.id,
                defn=defn,
                definition_yaml=template.canonical_yaml,
                mapping=template.definition,  # stored parsed: not serialised again
                name=name or f"{template.name} v{template.version}",
                description=description,
                now=now,
            )
            topo = Topology.build(
                instance,
                store.roles_of(conn, instance.id),
                store.interactions_of(conn, instance.id),
                defn,
            )
            genesis = self._genesis(conn, topo, context)
        self.topologies.put(topo)  # committed: the first checkout need not load it again
        return genesis

    def genesis(self, instance_id: uuid.UUID, initial_context: Any) -> Genesis:
        context = check_attributes(initial_context, "initial_context")
        topo = self.topologies.of_instance(instance_id)
        with self.db.begin() as conn:
            # FOR SHARE until commit: a kill switch (FOR NO KEY UPDATE) waits for this genesis
            # to commit, so its first pass sees the new UOW; or this one sees PAUSED.
            state = pause.lock_instance(conn, instance_id, share=True)
            if state is not None and state.status == InstanceStatus.PAUSED.value:
                raise InstancePaused(
                    f"instance {instance_id} is PAUSED (kill switch by {state.paused_by}: "
                    f"{state.pause_reason}); genesis is refused until a pilot resumes it",
                    instance_id=str(instance_id),
                    status=state.status,
                )
            return self._genesis(conn, topo, context)

    def _genesis(self, conn: Connection, topo: Topology, context: dict[str, Any]) -> Genesis:
        now = self.clock()
        uow_id = uuid.uuid4()
        alpha = topo.role_of_type(RoleType.ALPHA)
        row: dict[str, Any] = {
            "id": uow_id,
            "instance_id": topo.id,
            "parent_id": None,
            "status": UowStatus.PENDING.value,
            "child_count": 0,
            "finished_child_count": 0,
        }
        decision = choose_route(topo.defn, alpha.name, context, metadata(new_uow(row)), now)
        target: uuid.UUID | None
        failure: dict[str, Any] | None = None
        if decision.component is not None:
            status = UowStatus.PENDING
            target = topo.interaction_ids[decision.component.interaction]
        else:
            status, target = UowStatus.FAILED, topo.ate_id
            failure = FailureRecord.routing_error(
                decision.reason, during="genesis", at=now, role=alpha.name, actor_id=None
            ).as_json()
        row.update(
            status=status.value,
            current_interaction_id=target,
            current_role_id=alpha.id,
            created_at=now,
            updated_at=now,
            entered_at=now,
            failure=failure,
        )
        uows.insert_uows(conn, [row])
        uows.insert_attributes(
            conn,
            attribute_rows(uow_id, context, {}, actor_id=None, reasoning="genesis", now=now),
        )
        uows.log(
            conn,
            [
                log_row(
                    new_uow(row),
                    "genesis",
                    now,
                    role_id=alpha.id,
                    from_interaction_id=None,
                    from_status=None,
                    to_interaction_id=target,
                    to_status=status.value,
                    details={"route": decision.reason} if failure else None,
                )
            ],
        )
        return Genesis(topo.instance, uow_id, status, topo.interaction_name(target))

    def list(self) -> list[InstanceRow]:
        with self.db.connect() as conn:
            return store.list_instances(conn)

    def page(self, *, after: Key | None = None, limit: int = DEFAULT_LIMIT) -> Page[InstanceRow]:
        """A page of instances, oldest first."""
        with self.db.connect() as conn:
            return store.page_instances(conn, after, limit)

    def describe(self, instance_id: uuid.UUID) -> dict[str, Any]:
        """The instance with its roles and interactions: queue depth by status, and the
        roles that read each interaction (INBOUND) and write it (OUTBOUND)."""
        topo = self.topologies.of_instance(instance_id)
        with self.db.connect() as conn:
            depths = store.queue_depths(conn, instance_id)
            fresh = store.get_instance(conn, instance_id)  # its status: the cached copy may be old
        if fresh is None:
            raise UnknownInstance(f"instance {instance_id} does not exist", id=str(instance_id))
        return {
            "instance": fresh,
            "roles": sorted(topo.roles.values(), key=lambda r: r.name),
            "interactions": [
                {
                    "interaction": i,
                    "depth": depths.get(i.id, {}),
                    "read_by": _roles_on(topo, i.name, Direction.INBOUND),
                    "written_by": _roles_on(topo, i.name, Direction.OUTBOUND),
                }
                for i in sorted(topo.interactions.values(), key=lambda i: i.name)
            ],
            "ate_interaction": topo.interaction_name(topo.ate_id),
            "chronos_interaction": topo.interaction_name(topo.chronos_id),
        }

    def list_uows(
        self, f: UowFilter, *, limit: int = DEFAULT_LIMIT, after: Key | None = None
    ) -> UowPage:
        """One page of UOWs, newest-updated first (see ``UowListing.page``)."""
        return UowListing(self.db, self.topologies).page(f, limit=limit, after=after)

    def counts_by_status(self) -> dict[str, int]:
        with self.db.connect() as conn:
            return uows.counts_by_status(conn)

    # --- actors --------------------------------------------------------------------------

    def create_actor(self, name: str, actor_type: ActorType) -> uuid.UUID:
        if not name.strip():
            raise InvalidInput("actor name must not be blank")
        with self.db.begin() as conn:
            return actors.create(conn, name=name, actor_type=actor_type, now=self.clock())

    def assign(self, actor_id: uuid.UUID, role_id: uuid.UUID) -> bool:
        topo = self.topologies.of_role(role_id)
        if topo.role_type(role_id) is RoleType.ALPHA:
            raise InvalidInput("ALPHA roles do not check out work; nothing to assign")
        with self.db.begin() as conn:
            if actors.get(conn, actor_id) is None:
                raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
            return actors.assign(conn, actor_id, role_id, self.clock())

    def actor(self, actor_id: uuid.UUID) -> ActorDetail:
        with self.db.connect() as conn:
            found = actors.get(conn, actor_id)
            if found is None:
                raise UnknownActor(f"actor {actor_id} does not exist", id=str(actor_id))
            return ActorDetail(found, actors.roles_of(conn, actor_id))

    def actor_page(
        self, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[ActorRecord]:
        """A page of actors, oldest first."""
        with self.db.connect() as conn:
            return actors.page(conn, after, limit)

    # --- units of work -----------------------------------------------------------------------

    def uow(self, uow_id: uuid.UUID) -> UowDetail:
        now = self.clock()
        with self.db.connect() as conn:
            u = uows.record(conn, uow_id)
            if u is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            latest = uows.latest_attributes(conn, uow_id)
            kids = uows.children(conn, uow_id)
        topo = self.topologies.of_instance(u.instance_id)
        return UowDetail(
            uow=u,
            interaction=topo.interaction_name(u.current_interaction_id),
            role=topo.roles[u.current_role_id].name if u.current_role_id else None,
            heartbeat_age_seconds=(
                (now - u.last_heartbeat).total_seconds() if u.last_heartbeat else None
            ),
            attributes={k: v for k, (_, v) in latest.items()},
            children=kids,
        )

    def held_by(self, uow_id: uuid.UUID, actor_id: uuid.UUID) -> bool:
        """Whether the actor holds the UOW now or held it once (an actor key's own UOWs)."""
        with self.db.connect() as conn:
            return uows.held_by(conn, uow_id, actor_id)

    def history(self, uow_id: uuid.UUID) -> UowHistory:
        with self.db.connect() as conn:
            if uows.record(conn, uow_id) is None:
                raise UnknownUow(f"UOW {uow_id} does not exist", id=str(uow_id))
            return UowHistory(
                uow_id, uows.attribute_history(conn, uow_id), uows.log_history(conn, uow_id)
            )

    def role(self, role_id: uuid.UUID) -> Any:
        topo = self.topologies.of_role(role_id)
        if role_id not in topo.roles:
            raise UnknownRole(f"role {role_id} does not exist", id=str(role_id))
        return topo.role(role_id)


def _roles_on(topo: Topology, interaction: str, direction: Direction) -> list[RoleRow]:
    """The roles with a component of ``direction`` on ``interaction``, by name."""
    names = {
        c.role
        for c in topo.defn.components
        if c.interaction == interaction and c.direction is direction
    }
    return sorted((topo.roles[topo.role_ids[n]] for n in names), key=lambda r: r.name)
