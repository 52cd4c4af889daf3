"""Key management over HTTP (admin keys only), on both databases: bad requests first."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from chameleon_workflow.domain.security import parse_key
from chameleon_workflow.engine.keys import UNAUTHENTICATED
from chameleon_workflow.settings import Settings
from tests.api.conftest import items, ok, problem, unknown
from tests.conftest import bearer, make_key

KEYS = "/admin/keys"


def _actor(client: TestClient) -> str:
    actor_id: str = ok(client.post("/actors", json={"name": "bot", "type": "AI_AGENT"}), 201)[
        "actor_id"
    ]
    return actor_id


def test_bad_creations_are_422_and_change_nothing(client: TestClient) -> None:
    before = items(client.get(KEYS))
    problem(client.post(KEYS, json={"scope": "root"}), 422, "scope", "admin", "viewer")
    problem(client.post(KEYS, json={}), 422, "scope")
    problem(client.post(KEYS, json={"scope": "actor"}), 422, "needs the actor")
    problem(client.post(KEYS, json={"scope": "actor", "actor_id": unknown()}), 422, "not exist")
    actor = _actor(client)
    body = {"scope": "viewer", "actor_id": actor}
    problem(client.post(KEYS, json=body), 422, "only actor keys")
    problem(client.post(KEYS, json={"scope": "actor", "actor_id": "bot"}), 422, "actor_id")
    for days in (0, -1, 3651, "soon", "30", True):
        body = {"scope": "viewer", "expires_in_days": days}
        problem(client.post(KEYS, json=body), 422, "expires_in_days")
    for name in ("", " ", "x" * 201):
        problem(client.post(KEYS, json={"scope": "viewer", "name": name}), 422, "name")
    problem(client.post(KEYS, json={"scope": "viewer", "secret": "mine"}), 422, "secret")
    problem(client.post(KEYS, content="scope=admin"), 415)  # not JSON: a form's type
    assert items(client.get(KEYS)) == before


def test_revoking_an_unknown_or_malformed_id_is_404_or_422(client: TestClient) -> None:
    missing = unknown()
    problem(client.post(f"{KEYS}/{missing}/revoke"), 404, "UnknownKey", missing)
    problem(client.post(f"{KEYS}/not-a-uuid/revoke"), 422, "key_id")


def test_only_admin_keys_manage_keys(client: TestClient, settings: Settings) -> None:
    actor = _actor(client)
    target = ok(client.post(KEYS, json={"scope": "viewer"}), 201)["id"]
    callers = [make_key(settings, "operator"), make_key(settings, "viewer")]
    callers.append(make_key(settings, "actor", uuid.UUID(actor)))
    anonymous = TestClient(client.app, raise_server_exceptions=False)
    for key in callers:
        headers = bearer(key)
        problem(anonymous.post(KEYS, json={"scope": "admin"}, headers=headers), 403, "admin")
        problem(anonymous.get(KEYS, headers=headers), 403, "admin")
        problem(anonymous.post(f"{KEYS}/{target}/revoke", headers=headers), 403, "admin")
    refused = problem(anonymous.get(KEYS), 401)
    assert refused["message"] == UNAUTHENTICATED
    assert anonymous.get(KEYS).headers["www-authenticate"].startswith("Bearer")
    states = {k["id"]: k["state"] for k in items(client.get(KEYS))}
    assert states[target] == "active" and len(states) == 5  # nothing made, nothing revoked


def test_a_created_key_is_shown_once_and_works(client: TestClient, admin_key: str) -> None:
    created = ok(client.post(KEYS, json={"scope": "viewer", "name": "dashboard"}), 201)
    key = created.pop("key")
    key_id, secret = parse_key(key) or (None, "")
    assert str(key_id) == created["id"] and len(secret) == 43
    assert created["scope"] == "viewer" and created["name"] == "dashboard"
    assert created["state"] == "active" and created["actor_id"] is None
    assert created["expires_at"] is None and created["revoked_at"] is None
    admin_id = parse_key(admin_key) or (None, "")
    assert str(admin_id[0]) in created["created_by"]
    listing = client.get(KEYS)
    assert secret not in listing.text and admin_key.rsplit("_", 1)[1] not in listing.text
    listed = items(listing)
    assert [k["id"] for k in listed][-1] == created["id"]
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    assert {k["scope"] for k in listed} == {"admin", "viewer"}
    viewer = TestClient(client.app, raise_server_exceptions=False, headers=bearer(key))
    assert items(viewer.get("/templates")) == []
    problem(viewer.post("/actors", json={"name": "x", "type": "HUMAN"}), 403, "admin")


def test_an_actor_key_acts_as_its_actor_and_an_expiry_is_set(client: TestClient) -> None:
    actor = _actor(client)
    body = {"scope": "actor", "actor_id": actor, "expires_in_days": 1.5}
    created = ok(client.post(KEYS, json=body), 201)
    assert created["actor_id"] == actor and created["name"] == "actor key"
    made, expires = (datetime.fromisoformat(created[f]) for f in ("created_at", "expires_at"))
    assert expires - made == timedelta(days=1.5)
    as_actor = TestClient(client.app, raise_server_exceptions=False, headers=bearer(created["key"]))
    assert ok(as_actor.get(f"/actors/{actor}"))["id"] == actor
    problem(as_actor.get(f"/actors/{_actor(client)}"), 403, "only its own")


def test_a_revoked_key_is_refused_and_revoking_again_changes_nothing(client: TestClient) -> None:
    created = ok(client.post(KEYS, json={"scope": "operator"}), 201)
    holder = TestClient(client.app, raise_server_exceptions=False, headers=bearer(created["key"]))
    assert ok(holder.get("/admin/zombies"))["count"] == 0
    revoked = ok(client.post(f"{KEYS}/{created['id']}/revoke"))
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    assert "key" not in revoked
    refused = problem(holder.get("/admin/zombies"), 401)
    assert refused["message"] == UNAUTHENTICATED  # the same words as for any other bad key
    again = ok(client.post(f"{KEYS}/{created['id']}/revoke"))
    assert again["revoked_at"] == revoked["revoked_at"]
    listed = {k["id"]: k for k in items(client.get(KEYS))}
    assert listed[created["id"]]["state"] == "revoked"
    assert listed[created["id"]]["last_used_at"] is not None
