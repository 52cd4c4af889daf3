"""A memory's whole life against a real ``chameleon serve`` process, on SQLite and on a
PostgreSQL database of its own: learned at a submit, injected, marked toxic and cleared,
edited, archived and restored; its influence and versions tell the story afterwards.
Driven with a plain HTTP client; nothing here touches the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.api.conftest import Api, items, ok
from tests.conftest import PG_ADMIN_URL
from tests.e2e.live import live_server
from tests.flows import fixture_text
from tests.process import cli, create_key, server_env, serving


@pytest.fixture
def own_pg(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database for this test's server, dropped afterwards (``pg_url`` skips,
    or under CI fails, when the server is unreachable)."""
    name = f"chameleon_e2e_mem_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield (
            sa.engine.make_url(PG_ADMIN_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Base URL of a server on a fresh migrated database and an admin key; its log must show
    no server error at the end."""
    log = tmp_path / "server.log"
    if request.param == "sqlite":
        with live_server(tmp_path) as (base, key):
            yield base, key
    else:
        env = server_env(request.getfixturevalue("own_pg"))
        cli(env, "db", "upgrade")
        key = create_key(env)
        with serving(env, log) as (base, health):
            assert health["database"] == "postgresql"
            yield base, key
    text = log.read_text()
    assert " 500 " not in text and "Traceback" not in text, text


@pytest.fixture
def api(server: tuple[str, str]) -> Iterator[Api]:
    base, key = server
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as c:
        yield Api(c)


def test_a_memory_from_learning_to_restore(api: Api) -> None:
    c = api.c
    template = api.import_template(fixture_text("routing_workflow.yml"))
    made = api.instantiate(template["template_id"], {"amount": 10})
    instance, first_uow = made["workflow_id"], made["uow_id"]
    triage = api.roles(instance)["Triage"]
    worker = api.actor("worker", [triage])

    def work(expect: dict[str, Any], **attrs: Any) -> tuple[str, dict[str, Any]]:
        """Check out the next Triage UOW, which must get ``expect`` as its memory context,
        and submit it; (uow_id, the submit's answer)."""
        lease = api.take(worker, triage)
        assert lease["context"] == expect, lease
        done = ok(api.submit(lease, worker, amount=1, **attrs))
        return lease["uow_id"], done

    def next_uow() -> None:
        ok(c.post(f"/instances/{instance}/genesis", json={"initial_context": {"amount": 1}}), 201)

    # learned at a submit: the memory exists with its provenance
    rule = {"key": "tip", "value": "check totals", "reasoning": "totals were off"}
    learned_at, done = work({}, _learned_rule=rule)
    assert learned_at == first_uow
    memory_id = done["learned_memory_id"]
    memory = ok(c.get(f"/memories/{memory_id}"))
    assert (memory["scope"], memory["actor_id"], memory["key"], memory["version"]) == (
        "ACTOR", worker, "tip", 1,
    )  # fmt: skip
    assert (memory["source_uow_id"], memory["source_actor_id"]) == (first_uow, worker)
    assert (memory["reasoning"], memory["written_by"]) == (
        "totals were off", f"actor {worker} (submit)",
    )  # fmt: skip
    v1 = {"tip": "check totals"}

    # injected at the next checkout, and recorded
    next_uow()
    seen_v1, _ = work(v1)
    [injection] = items(c.get(f"/uows/{seen_v1}/memory-injections"))
    assert [(e["memory_id"], e["version"], e["key"]) for e in injection["entries"]] == [
        (memory_id, 1, "tip")
    ]
    assert (injection["actor_id"], injection["role_id"]) == (worker, triage)

    # toxic: not injected; cleared: injected again
    ok(c.post("/admin/mark-toxic", json={"memory_id": memory_id, "reason": "misleading"}))
    next_uow()
    while_toxic, _ = work({})
    assert items(c.get(f"/uows/{while_toxic}/memory-injections")) == []
    ok(c.post("/admin/unmark-toxic", json={"memory_id": memory_id, "reason": "fine after all"}))
    next_uow()
    seen_v1_again, _ = work(v1)

    # edited: version 2 under the same id
    edit = {
        "key": "tip", "value": "check totals twice", "scope": "ACTOR", "actor_id": worker,
        "reasoning": "once was not enough",
    }  # fmt: skip
    edited = ok(c.post(f"/roles/{triage}/memories", json=edit), 201)
    assert (edited["id"], edited["version"]) == (memory_id, 2)
    v2 = {"tip": "check totals twice"}
    next_uow()
    seen_v2, _ = work(v2)

    # archived: not injected; restored: injected again
    archived = ok(c.request("DELETE", f"/memories/{memory_id}", json={"reason": "retired"}))
    assert archived["archived"] is True
    listed = items(c.get(f"/roles/{triage}/memories?archived=true"))
    assert [(m["id"], m["archive_reason"]) for m in listed] == [(memory_id, "retired")]
    next_uow()
    while_archived, _ = work({})
    assert items(c.get(f"/uows/{while_archived}/memory-injections")) == []
    restored = ok(c.post(f"/memories/{memory_id}/restore", json={"reason": "needed"}))
    assert restored["archived"] is False
    next_uow()
    seen_v2_again, _ = work(v2)

    # the story afterwards
    influence = items(c.get(f"/memories/{memory_id}/influence"))
    assert [(i["uow_id"], i["version"], i["key"], i["actor_id"]) for i in influence] == [
        (seen_v1, 1, "tip", worker),
        (seen_v1_again, 1, "tip", worker),
        (seen_v2, 2, "tip", worker),
        (seen_v2_again, 2, "tip", worker),
    ]
    versions = items(c.get(f"/memories/{memory_id}/versions"))
    assert [
        (v["version"], v["value"], v["reasoning"], v["source_uow_id"], v["source_actor_id"])
        for v in versions
    ] == [
        (1, "check totals", "totals were off", first_uow, worker),
        (2, "check totals twice", "once was not enough", None, None),
    ]
    assert versions[0]["written_by"] == f"actor {worker} (submit)"
    assert versions[1]["written_by"].startswith("admin key (key ")
    history = items(c.get(f"/admin/memories/{memory_id}/toxic-history"))
    assert [(e["action"], e["reason"]) for e in history] == [
        ("mark_toxic", "misleading"),
        ("unmark_toxic", "fine after all"),
        ("archive", "retired"),
        ("restore", "needed"),
    ]
