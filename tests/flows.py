"""A test helper driving one instance of a workflow through the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chameleon_workflow.domain.enums import ActorType
from chameleon_workflow.engine.checkout import Checkout
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.instances import UowDetail

FIXTURES = Path(__file__).parent / "fixtures"


class Flow:
    def __init__(
        self, engine: Engine, yaml_text: str, context: dict[str, Any] | None = None
    ) -> None:
        self.engine = engine
        self.template = engine.templates.import_yaml(yaml_text).template
        g = engine.instances.instantiate(self.template.id, context or {})
        self.instance_id = g.instance.id
        self.first_uow = g.uow_id
        described = engine.instances.describe(self.instance_id)
        self.roles = {r.name: r.id for r in described["roles"]}
        self.role_types = {r.name: r.role_type for r in described["roles"]}
        self.actor = self.new_actor("worker")

    def new_actor(self, name: str, *, assign: bool = True) -> uuid.UUID:
        actor = self.engine.instances.create_actor(name, ActorType.AI_AGENT)
        if assign:
            for role, role_type in self.role_types.items():
                if role_type != "ALPHA":
                    self.engine.instances.assign(actor, self.roles[role])
        return actor

    def genesis(self, **context: Any) -> uuid.UUID:
        return self.engine.instances.genesis(self.instance_id, context).uow_id

    def checkout(self, role: str, actor: uuid.UUID | None = None) -> Checkout | None:
        return self.engine.runtime.checkout(actor or self.actor, self.roles[role])

    def take(self, role: str, actor: uuid.UUID | None = None) -> Checkout:
        c = self.checkout(role, actor)
        assert c is not None, f"expected work for {role}"
        return c

    def submit(self, c: Checkout, actor: uuid.UUID | None = None, **attrs: Any) -> Any:
        return self.engine.runtime.submit(c.uow_id, actor or self.actor, attrs, lease_id=c.lease_id)

    def uow(self, uow_id: uuid.UUID) -> UowDetail:
        return self.engine.instances.uow(uow_id)

    def where(self, uow_id: uuid.UUID) -> tuple[str, str | None]:
        u = self.uow(uow_id)
        return u.uow.status, u.interaction

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.db.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()


def fixture_text(name: str) -> str:
    if (FIXTURES / name).exists():
        return (FIXTURES / name).read_text(encoding="utf-8")
    return (FIXTURES / "prototype-examples" / name).read_text(encoding="utf-8")


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on the engine's database while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine.db.engine, "before_cursor_execute", record)
