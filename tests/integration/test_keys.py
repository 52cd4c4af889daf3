"""API keys on both databases: creation, authentication, revocation, expiry (unhappy first)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.enums import ActorType
from chameleon_workflow.domain.errors import InvalidInput, Unauthenticated
from chameleon_workflow.domain.security import Scope, format_key, parse_key
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.keys import UNAUTHENTICATED, UnknownKey
from chameleon_workflow.store.tables import ApiKey
from tests.conftest import FakeClock


def _refused(engine: Engine, text: str | None) -> None:
    with pytest.raises(Unauthenticated) as refused:
        engine.keys.authenticate(text)
    assert refused.value.message == UNAUTHENTICATED  # never says which reason
    assert refused.value.details == {}


def test_every_kind_of_bad_key_is_refused_with_the_same_message(
    engine: Engine, clock: FakeClock
) -> None:
    _, key = engine.keys.create(Scope.VIEWER, created_by="test")
    key_id, secret = parse_key(key) or (None, "")
    assert key_id is not None
    _refused(engine, None)
    _refused(engine, "")
    _refused(engine, "not-a-key")
    _refused(engine, key + "x")
    _refused(engine, format_key(uuid.uuid4(), secret))  # unknown id
    _refused(engine, format_key(key_id, secret[:-1] + ("A" if secret[-1] != "A" else "B")))
    _, short_key = engine.keys.create(Scope.VIEWER, created_by="test", expires_in_days=1)
    clock.advance(86_401)
    _refused(engine, short_key)
    engine.keys.revoke(key_id)
    _refused(engine, key)


def test_bad_creations_change_nothing(engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="unknown scope 'root'"):
        engine.keys.create("root", created_by="test")
    with pytest.raises(InvalidInput, match="needs the actor"):
        engine.keys.create(Scope.ACTOR, created_by="test")
    with pytest.raises(InvalidInput, match="only actor keys"):
        engine.keys.create(Scope.VIEWER, actor_id=uuid.uuid4(), created_by="test")
    with pytest.raises(InvalidInput, match="does not exist"):
        engine.keys.create(Scope.ACTOR, actor_id=uuid.uuid4(), created_by="test")
    with pytest.raises(InvalidInput, match="expires in days"):
        engine.keys.create(Scope.VIEWER, expires_in_days=0, created_by="test")
    with pytest.raises(InvalidInput, match="name"):
        engine.keys.create(Scope.VIEWER, name=" ", created_by="test")
    with pytest.raises(UnknownKey):
        engine.keys.revoke(uuid.uuid4())
    assert engine.keys.list() == []


def test_a_key_is_random_shown_once_and_stored_only_as_a_hash(engine: Engine) -> None:
    info, key = engine.keys.create(Scope.ADMIN, name="ops", created_by="test")
    other_info, other = engine.keys.create(Scope.ADMIN, name="ops", created_by="test")
    assert key != other and key.startswith("chm_")
    _, secret = parse_key(key) or (None, "")
    assert len(secret) == 43  # 256 bits, base64url
    with engine.db.connect() as conn:
        stored = conn.execute(sa.select(ApiKey.__table__)).all()
    assert len(stored) == 2
    assert all(secret not in str(tuple(row)) for row in stored)
    assert info.scope is Scope.ADMIN and info.created_by == "test" and info.last_used_at is None


def test_authentication_names_the_scope_and_actor_and_stamps_last_use(
    engine: Engine, clock: FakeClock
) -> None:
    actor = engine.instances.create_actor("bot", ActorType.AI_AGENT)
    info, key = engine.keys.create(Scope.ACTOR, actor_id=actor, created_by="test")
    principal = engine.keys.authenticate(key)
    assert (principal.key_id, principal.scope, principal.actor_id) == (info.id, Scope.ACTOR, actor)
    assert principal.acts_for(actor) and not principal.acts_for(uuid.uuid4())
    assert engine.keys.get(info.id).last_used_at == clock()


def test_revocation_reaches_another_process_within_the_cache_time(
    engine: Engine, clock: FakeClock
) -> None:
    _, key = engine.keys.create(Scope.VIEWER, created_by="test")
    other = Engine(engine.settings.model_copy(update={"auth_cache_seconds": 0}), clock=clock)
    try:
        assert other.keys.authenticate(key).scope is Scope.VIEWER
        key_id, _ = parse_key(key) or (uuid.uuid4(), "")
        engine.keys.revoke(key_id)
        _refused(other, key)
        assert engine.keys.get(key_id).state(clock()) == "revoked"
    finally:
        other.close()
