"""An instance's immutable shape: its definition plus the ids of its cloned rows."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Connection

from ..domain.definition import ComponentDef, GuardianDef, WorkflowDefinition
from ..domain.enums import Direction, GuardianType, RoleType
from ..domain.errors import UnknownInstance, UnknownRole
from ..domain.guardian_config import Injector, read_allowed_models, read_injector
from ..domain.parsing import parse_workflow_mapping
from ..store import instances as store
from ..store.database import Database
from ..store.instances import InstanceRow, InteractionRow, RoleRow

logger = logging.getLogger(__name__)

# Gates evaluated in Python at checkout; PASS_THRU always passes and CERBERUS is a query.
EVALUATED_GATES = frozenset(
    {GuardianType.CRITERIA_GATE, GuardianType.TTL_CHECK, GuardianType.COMPOSITE}
)


@dataclass(frozen=True)
class Topology:
    instance: InstanceRow
    defn: WorkflowDefinition
    roles: dict[uuid.UUID, RoleRow]
    interactions: dict[uuid.UUID, InteractionRow]
    role_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    interaction_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        instance: InstanceRow,
        roles: list[RoleRow],
        interactions: list[InteractionRow],
        defn: WorkflowDefinition | None = None,
    ) -> Topology:
        """``defn`` when the caller has it already; otherwise read from the stored JSON."""
        return cls(
            instance=instance,
            defn=defn or parse_workflow_mapping(instance.definition),
            roles={r.id: r for r in roles},
            interactions={i.id: i for i in interactions},
            role_ids={r.name: r.id for r in roles},
            interaction_ids={i.name: i.id for i in interactions},
        )

    @property
    def id(self) -> uuid.UUID:
        return self.instance.id

    @property
    def ate_id(self) -> uuid.UUID | None:
        return self.instance.ate_interaction_id

    @property
    def chronos_id(self) -> uuid.UUID | None:
        return self.instance.chronos_interaction_id

    def role(self, role_id: uuid.UUID) -> RoleRow:
        return self.roles[role_id]

    def role_type(self, role_id: uuid.UUID) -> RoleType:
        return RoleType(self.roles[role_id].role_type)

    def role_of_type(self, role_type: RoleType) -> RoleRow:
        return next(r for r in self.roles.values() if r.role_type == role_type.value)

    def inbound(self, role_id: uuid.UUID) -> list[ComponentDef]:
        return self.defn.components_of(self.roles[role_id].name, Direction.INBOUND)

    def inbound_interaction_ids(self, role_id: uuid.UUID) -> list[uuid.UUID]:
        return [self.interaction_ids[c.interaction] for c in self.inbound(role_id)]

    def gates(self, role_id: uuid.UUID, interaction_id: uuid.UUID) -> list[GuardianDef]:
        """Guardians evaluated in Python for work taken by ``role_id`` from an interaction."""
        name = self.interactions[interaction_id].name
        return [
            g
            for c in self.inbound(role_id)
            if c.interaction == name
            for g in c.guardians
            if g.type in EVALUATED_GATES
        ]

    def has_gates(self, role_id: uuid.UUID) -> bool:
        return any(g.type in EVALUATED_GATES for c in self.inbound(role_id) for g in c.guardians)

    def injectors(
        self, role_id: uuid.UUID, interaction_id: uuid.UUID | None
    ) -> tuple[Injector, ...]:
        """The CONDITIONAL_INJECTOR guardians of work taken by ``role_id`` from an interaction,
        in definition order (Dynamic Context Injection at checkout)."""
        if interaction_id is None:
            return ()
        key = (self.roles[role_id].name, self.interactions[interaction_id].name)
        return self._injectors.get(key, ())

    def has_injectors(self, role_id: uuid.UUID) -> bool:
        return self.roles[role_id].name in self._injector_roles

    @cached_property
    def allowed_models(self) -> frozenset[str]:
        """The models injectors may choose (the workflow's ``ai_context.allowed_models``)."""
        return read_allowed_models(self.defn.ai_context)[0]

    @cached_property
    def _injectors(self) -> dict[tuple[str, str], tuple[Injector, ...]]:
        found: dict[tuple[str, str], list[Injector]] = {}
        for c in self.defn.components:
            if c.direction is not Direction.INBOUND:
                continue
            for g in c.guardians:
                if g.type is not GuardianType.CONDITIONAL_INJECTOR:
                    continue
                injector, problems = read_injector(g.name, g.config)
                if injector is None:  # imported before injectors were validated
                    logger.warning(
                        "injector ignored: misconfigured",
                        extra={"guardian_name": g.name, "problems": problems},
                    )
                    continue
                found.setdefault((c.role, c.interaction), []).append(injector)
        return {key: tuple(injectors) for key, injectors in found.items()}

    @cached_property
    def _injector_roles(self) -> frozenset[str]:
        return frozenset(role for role, _ in self._injectors)

    @property
    def cerberus_interaction_id(self) -> uuid.UUID:
        """OMEGA's CERBERUS-guarded inbound interaction, where decomposed parents wait."""
        omega = self.role_of_type(RoleType.OMEGA)
        inbound = self.inbound(omega.id)
        guarded = [c for c in inbound if any(g.type is GuardianType.CERBERUS for g in c.guardians)]
        return self.interaction_ids[(guarded or inbound)[0].interaction]

    def interaction_name(self, interaction_id: uuid.UUID | None) -> str | None:
        return self.interactions[interaction_id].name if interaction_id else None


class TopologyCache:
    """Instances never change shape after cloning, so their topology is cached; the cache keeps
    the ``size`` most recently used instances (a process serving many instances stays bounded).
    """

    def __init__(self, db: Database, size: int = 1024) -> None:
        self.db = db
        self.size = size
        self._by_instance: OrderedDict[uuid.UUID, Topology] = OrderedDict()
        self._instance_of_role: dict[uuid.UUID, uuid.UUID] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_instance)

    def of_instance(self, instance_id: uuid.UUID, conn: Connection | None = None) -> Topology:
        """The instance's topology; pass the open ``conn`` when inside a transaction.

        (On SQLite a second connection would wait for the first one's write lock.)
        """
        with self._lock:
            topo = self._by_instance.get(instance_id)
            if topo is not None:
                self._by_instance.move_to_end(instance_id)
                return topo
        if conn is not None:
            topo = self._load(conn, instance_id)
        else:
            with self.db.connect() as own:
                topo = self._load(own, instance_id)
        self.put(topo)
        return topo

    def put(self, topo: Topology) -> None:
        """Cache ``topo`` (e.g. one just built for a new instance, once it is committed)."""
        with self._lock:
            self._by_instance[topo.id] = topo
            self._by_instance.move_to_end(topo.id)
            self._instance_of_role.update({rid: topo.id for rid in topo.roles})
            while len(self._by_instance) > self.size:
                _, evicted = self._by_instance.popitem(last=False)
                for rid in evicted.roles:
                    self._instance_of_role.pop(rid, None)

    @staticmethod
    def _load(conn: Connection, instance_id: uuid.UUID) -> Topology:
        instance = store.get_instance(conn, instance_id)
        if instance is None:
            raise UnknownInstance(f"instance {instance_id} does not exist", id=str(instance_id))
        return Topology.build(
            instance, store.roles_of(conn, instance_id), store.interactions_of(conn, instance_id)
        )

    def of_role(self, role_id: uuid.UUID) -> Topology:
        instance_id = self._instance_of_role.get(role_id)
        if instance_id is None:
            with self.db.connect() as conn:
                instance_id = store.instance_of_role(conn, role_id)
            if instance_id is None:
                raise UnknownRole(f"role {role_id} does not exist", id=str(role_id))
        return self.of_instance(instance_id)
