"""The authorization matrix: every route of the app × every kind of caller, on both databases.

The routes come from the app's own route table, so a route added without a rule
(``dependencies=[allow(Right.X)]``) and not in ``OPEN_PATHS`` fails here. What each caller
should get follows from the route's declared rule and the scopes' grants written out below:
no, malformed, unknown, revoked or expired key → 401 with one message; a scope without the
right → 403 naming the scope needed; an ``actor`` key passes on WORK routes and
``own=True`` reads for its own actor and gets 403 for another actor's. The requests are
valid ones against a seeded instance, so "allowed" means a 2xx answer; a route without a
seeded request (added since) is still checked for 401/403 with placeholder ids, where
"allowed" means any answer but 401 and 403.

One app per database serves every test of this module; requests that spend something
(a lease, a key) get a fresh one.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.domain.enums import ActorType, InterventionType, MemoryScope
from chameleon_workflow.domain.security import NEEDED, Right, Scope, format_key
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.keys import UNAUTHENTICATED
from chameleon_workflow.settings import Settings
from tests.api.route_rules import Route, Rule, app_routes, route_table, unruled
from tests.conftest import TEST_HOSTS, FakeClock, empty_database
from tests.flows import fixture_text

ROUTING = fixture_text("routing_workflow.yml")
SECURITY_MD = Path(__file__).parents[2] / "docs" / "security.md"
GLOBAL = MemoryScope.GLOBAL
CLARIFY = InterventionType.CLARIFICATION


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "route" in metafunc.fixturenames:
        table = app_routes()
        metafunc.parametrize("route", table, ids=[r.id for r in table])


def test_every_route_declares_one_rule_or_is_open() -> None:
    table = app_routes()
    assert len(table) >= 40
    assert unruled(table) == []


def test_a_route_added_without_a_rule_is_caught() -> None:
    app = create_app(Settings(database_url="sqlite://"))
    app.get("/unruled")(lambda: {})
    nested = APIRouter(prefix="/outer")
    nested.post("/inner")(lambda: {})
    app.include_router(nested)
    assert sorted(unruled(route_table(app))) == ["GET /unruled", "POST /outer/inner"]


# --- the callers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    name: str
    scope: Scope | None = None  # None: not authenticated
    own: bool = False  # an actor key of the seeded actor (else of another actor)


CALLERS = [
    Caller("no key"),
    Caller("malformed key"),
    Caller("unknown key"),
    Caller("revoked key"),
    Caller("expired key"),
    Caller("admin", Scope.ADMIN),
    Caller("operator", Scope.OPERATOR),
    Caller("viewer", Scope.VIEWER),
    Caller("actor", Scope.ACTOR, own=True),
    Caller("other actor", Scope.ACTOR),
]


# What each scope may do, written out here rather than read from the code under test.
GRANTS = {
    Scope.ADMIN: {Right.READ, Right.WORK, Right.OPERATE, Right.ADMIN},
    Scope.OPERATOR: {Right.READ, Right.OPERATE},
    Scope.VIEWER: {Right.READ},
    Scope.ACTOR: {Right.WORK},
}


def expected(rule: Rule | None, caller: Caller) -> str:
    """'2xx', '401' or '403' from the route's rule alone (None: an open route)."""
    if rule is None:
        return "2xx"
    if caller.scope is None:
        return "401"
    right, own = rule
    if caller.scope is Scope.ACTOR:
        return ("2xx" if caller.own else "403") if right is Right.WORK or own else "403"
    return "2xx" if right in GRANTS[caller.scope] else "403"


# --- the seeded world -------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    url: str
    json: Any = None
    content: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """The seeded app: a routing-workflow instance, an actor holding a UOW, its playbook
    entry, a global memory, and one key per caller."""

    client: TestClient
    engine: Engine
    template_id: uuid.UUID
    instance_id: uuid.UUID
    roles: dict[str, uuid.UUID]
    actor: uuid.UUID  # the actor of the "actor" key; "other actor" is another one
    held_uow: uuid.UUID = field(init=False)  # a UOW the actor holds
    playbook: uuid.UUID = field(init=False)  # an entry of the actor's playbook
    global_memory: uuid.UUID = field(init=False)
    request_id: uuid.UUID = field(init=False)  # an intervention request the actor raised
    keys: dict[str, str] = field(default_factory=dict)  # caller name → key text

    def __post_init__(self) -> None:
        self.held_uow, _ = self.lease()
        memory = self.engine.memory
        self.playbook = memory.write(
            self.triage, key="habit", value=1, scope=MemoryScope.ACTOR, actor_id=self.actor
        ).id
        self.global_memory = memory.write(self.triage, key="tip", value=2, scope=GLOBAL).id
        uow, lease = self.lease()
        self.request_id = self.engine.interventions.request(
            uow, self.actor, type=InterventionType.APPROVAL, title="seeded", lease_id=lease
        ).id

    @property
    def triage(self) -> uuid.UUID:
        return self.roles["Triage"]

    def lease(self) -> tuple[uuid.UUID, uuid.UUID]:
        """A new UOW leased to the actor: (uow id, lease id)."""
        self.engine.instances.genesis(self.instance_id, {"amount": 5})
        taken = self.engine.runtime.checkout(self.actor, self.triage)
        assert taken is not None
        return taken.uow_id, taken.lease_id

    def work(self, **extra: Any) -> dict[str, Any]:
        """The body of a submit or failure on a fresh lease of the actor."""
        uow, lease = self.lease()
        return {"uow_id": str(uow), "actor_id": str(self.actor), "lease_id": str(lease), **extra}


def _seed(client: TestClient, engine: Engine, clock: FakeClock) -> World:
    template = engine.templates.import_yaml(ROUTING).template.id
    instance = engine.instances.instantiate(template, {"amount": 10}).instance.id
    roles = {r.name: r.id for r in engine.instances.describe(instance)["roles"]}
    mine, theirs = (engine.instances.create_actor(n, ActorType.AI_AGENT) for n in ("a", "b"))
    for actor in (mine, theirs):
        engine.instances.assign(actor, roles["Triage"])
    w = World(client, engine, template, instance, roles, mine)

    def key(scope: Scope, actor: uuid.UUID | None = None, days: float | None = None) -> str:
        return engine.keys.create(scope, actor_id=actor, expires_in_days=days, created_by="m")[1]

    for scope in (Scope.ADMIN, Scope.OPERATOR, Scope.VIEWER):
        w.keys[scope.value] = key(scope)
    w.keys["actor"] = key(Scope.ACTOR, mine)
    w.keys["other actor"] = key(Scope.ACTOR, theirs)
    revoked, w.keys["revoked key"] = engine.keys.create(Scope.ADMIN, created_by="m")
    engine.keys.revoke(revoked.id)
    clock.advance(-2 * 86_400)  # made two days ago, expired yesterday
    w.keys["expired key"] = key(Scope.ADMIN, days=1)
    clock.advance(2 * 86_400)
    w.keys["malformed key"] = "chm_not-a-key"
    w.keys["unknown key"] = format_key(uuid.uuid4(), w.keys["admin"][-43:])
    return w


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[World]:
    """One seeded app per database for the whole module."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("matrix") / "chameleon.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        empty_database(url)
    # Hundreds of refused keys come from one client address here: the failed-authentication
    # rate limit (tested in test_rate_limits.py) would turn the later 401s into 429s.
    settings = Settings(
        database_url=url,
        scheduler_enabled=False,
        allowed_hosts=TEST_HOSTS,
        rate_limit_enabled=False,
    )
    clock = FakeClock()
    engine = Engine(settings, clock=clock)
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as c:
            yield _seed(c, engine, clock)
    finally:
        engine.close()


# --- a valid request for every route ----------------------------------------------------------

YAML = {"content-type": "application/yaml"}

CASES: dict[str, Callable[[World], Call]] = {
    "POST /templates": lambda w: Call("POST", "/templates", content=ROUTING, headers=YAML),
    "GET /templates": lambda w: Call("GET", "/templates"),
    "GET /templates/{template_id}": lambda w: Call("GET", f"/templates/{w.template_id}"),
    "GET /templates/{template_id}/yaml": lambda w: Call("GET", f"/templates/{w.template_id}/yaml"),
    "GET /templates/{template_id}/graph": lambda w: Call(
        "GET", f"/templates/{w.template_id}/graph"
    ),
    "POST /workflow/instantiate": lambda w: Call(
        "POST", "/workflow/instantiate", {"template_id": str(w.template_id)}
    ),
    "POST /instances/{instance_id}/genesis": lambda w: Call(
        "POST", f"/instances/{w.instance_id}/genesis", {"initial_context": {"amount": 3}}
    ),
    "POST /workflow/checkout": lambda w: Call(
        "POST", "/workflow/checkout", {"actor_id": str(w.actor), "role_id": str(w.triage)}
    ),
    "POST /workflow/submit": lambda w: Call(
        "POST", "/workflow/submit", w.work(result_attributes={"amount": 5})
    ),
    "POST /workflow/failure": lambda w: Call("POST", "/workflow/failure", w.work(error_code="E")),
    "POST /workflow/uow/{uow_id}/heartbeat": lambda w: _heartbeat(w),
    "GET /instances": lambda w: Call("GET", "/instances"),
    "GET /instances/{instance_id}": lambda w: Call("GET", f"/instances/{w.instance_id}"),
    "POST /actors": lambda w: Call("POST", "/actors", {"name": "new", "type": "HUMAN"}),
    "GET /actors": lambda w: Call("GET", "/actors"),
    "GET /actors/{actor_id}": lambda w: Call("GET", f"/actors/{w.actor}"),
    "POST /actors/{actor_id}/assignments": lambda w: Call(
        "POST", f"/actors/{w.actor}/assignments", {"role_id": str(w.roles["Small"])}
    ),
    "GET /uows": lambda w: Call("GET", f"/uows?instance_id={w.instance_id}"),
    "GET /uows/{uow_id}": lambda w: Call("GET", f"/uows/{w.held_uow}"),
    "GET /uows/{uow_id}/history": lambda w: Call("GET", f"/uows/{w.held_uow}/history"),
    "GET /uows/{uow_id}/memory-injections": lambda w: Call(
        "GET", f"/uows/{w.held_uow}/memory-injections"
    ),
    "POST /roles/{role_id}/memories": lambda w: Call(
        "POST",
        f"/roles/{w.triage}/memories",
        {"key": "note", "value": 1, "reasoning": "r", "scope": "ACTOR", "actor_id": str(w.actor)},
    ),
    "GET /memories/{memory_id}/versions": lambda w: Call("GET", f"/memories/{w.playbook}/versions"),
    "DELETE /memories/{memory_id}": lambda w: Call(
        "DELETE", f"/memories/{_entry(w)}", {"reason": "r"}
    ),
    "POST /memories/{memory_id}/restore": lambda w: Call(
        "POST", f"/memories/{_entry(w, archived=True)}/restore", {"reason": "r"}
    ),
    "POST /memories/{memory_id}/hold": lambda w: Call(
        "POST", f"/memories/{_entry(w)}/hold", {"reason": "r"}
    ),
    "POST /memories/{memory_id}/release": lambda w: Call(
        "POST", f"/memories/{_entry(w, held=True)}/release", {"reason": "r"}
    ),
    "POST /roles/{role_id}/actors/{actor_id}/playbook/reset": lambda w: Call(
        "POST", f"/roles/{w.triage}/actors/{w.actor}/playbook/reset", {"reason": "r"}
    ),
    "GET /roles/{role_id}/memories": lambda w: Call(
        "GET", f"/roles/{w.triage}/memories?scope=ACTOR&actor_id={w.actor}"
    ),
    "GET /memories/{memory_id}": lambda w: Call("GET", f"/memories/{w.playbook}"),
    "GET /memories/{memory_id}/influence": lambda w: Call(
        "GET", f"/memories/{w.global_memory}/influence"
    ),
    "POST /admin/run-zombie-protocol": lambda w: _dry("zombie-protocol"),
    "POST /admin/run-stale-token-protocol": lambda w: _dry("stale-token-protocol"),
    "POST /admin/run-memory-decay": lambda w: _dry("memory-decay"),
    "POST /admin/mark-toxic": lambda w: _toxic(w, "mark-toxic"),
    "POST /admin/mark-toxic/bulk": lambda w: Call(
        "POST", "/admin/mark-toxic/bulk", {"memory_ids": [str(w.global_memory)], "reason": "r"}
    ),
    "POST /admin/unmark-toxic": lambda w: _toxic(w, "unmark-toxic"),
    "GET /admin/memories/{memory_id}/toxic-history": lambda w: Call(
        "GET", f"/admin/memories/{w.global_memory}/toxic-history"
    ),
    "GET /admin/zombies": lambda w: Call("GET", "/admin/zombies"),
    "GET /admin/maintenance-runs": lambda w: Call("GET", "/admin/maintenance-runs"),
    "GET /admin/scheduler": lambda w: Call("GET", "/admin/scheduler"),
    "GET /admin/audit": lambda w: Call("GET", "/admin/audit"),
    "POST /admin/keys": lambda w: Call("POST", "/admin/keys", {"scope": "viewer", "name": "m"}),
    "GET /admin/keys": lambda w: Call("GET", "/admin/keys"),
    "POST /admin/keys/{key_id}/revoke": lambda w: Call(
        "POST", f"/admin/keys/{w.engine.keys.create('viewer', created_by='m')[0].id}/revoke"
    ),
    "GET /docs-assets/*": lambda w: Call("GET", "/docs-assets/swagger-ui.css"),
    "POST /workflow/uow/{uow_id}/intervention": lambda w: _intervention(w),
    "POST /pilot/kill-switch": lambda w: Call(
        "POST", "/pilot/kill-switch", {"instance_id": str(_instance(w)), "reason": "r"}
    ),
    "POST /pilot/instances/{instance_id}/resume": lambda w: Call(
        "POST", f"/pilot/instances/{_instance(w, paused=True)}/resume", {"reason": "r"}
    ),
    "POST /pilot/resume/{uow_id}": lambda w: Call(
        "POST", f"/pilot/resume/{_parked(w).uow_id}", {"reason": "r"}
    ),
    "POST /pilot/cancel/{uow_id}": lambda w: Call(
        "POST", f"/pilot/cancel/{_parked(w).uow_id}", {"reason": "r"}
    ),
    "POST /pilot/clarification/{uow_id}": lambda w: Call(
        "POST", f"/pilot/clarification/{_parked(w, CLARIFY).uow_id}", {"text": "t"}
    ),
    "GET /api/interventions/pending": lambda w: Call("GET", "/api/interventions/pending"),
    "GET /api/interventions/metrics": lambda w: Call("GET", "/api/interventions/metrics"),
    "GET /api/interventions/stream": lambda w: Call("GET", "/api/interventions/stream"),
    "GET /api/interventions/{request_id:uuid}": lambda w: Call(
        "GET", f"/api/interventions/{w.request_id}"
    ),
    "POST /api/interventions/{request_id:uuid}/approve": lambda w: Call(
        "POST", f"/api/interventions/{_parked(w).id}/approve", {"reason": "r"}
    ),
    "POST /api/interventions/{request_id:uuid}/reject": lambda w: Call(
        "POST", f"/api/interventions/{_parked(w).id}/reject", {"reason": "r"}
    ),
}


def _instance(w: World, *, paused: bool = False) -> uuid.UUID:
    """A fresh instance of the template (its kill switch on if asked)."""
    instance = w.engine.instances.instantiate(w.template_id, {}).instance.id
    if paused:
        w.engine.kill_switch.pause(instance, "seeded", by="matrix")
    return instance


def _intervention(w: World) -> Call:
    uow, lease = w.lease()
    body = {"actor_id": str(w.actor), "lease_id": str(lease), "type": "approval", "title": "t"}
    return Call("POST", f"/workflow/uow/{uow}/intervention", body)


def _parked(w: World, kind: InterventionType = InterventionType.APPROVAL) -> Any:
    """A request the actor just raised for a UOW it held (the UOW is parked)."""
    uow, lease = w.lease()
    return w.engine.interventions.request(uow, w.actor, type=kind, title="t", lease_id=lease)


def _entry(w: World, *, archived: bool = False, held: bool = False) -> uuid.UUID:
    """A fresh entry of the actor's playbook (archived or held if asked)."""
    memory = w.engine.memory
    entry = memory.write(
        w.triage, key=uuid.uuid4().hex, value=1, scope=MemoryScope.ACTOR, actor_id=w.actor
    ).id
    if archived:
        memory.archive(entry, "seeded", by="matrix")
    if held:
        memory.hold(entry, "seeded", by="matrix")
    return entry


def _heartbeat(w: World) -> Call:
    uow, lease = w.lease()
    body = {"actor_id": str(w.actor), "lease_id": str(lease)}
    return Call("POST", f"/workflow/uow/{uow}/heartbeat", body)


def _dry(job: str) -> Call:
    return Call("POST", f"/admin/run-{job}", {"dry_run": True})


def _toxic(w: World, action: str) -> Call:
    return Call("POST", f"/admin/{action}", {"memory_id": str(w.global_memory), "reason": "r"})


def placeholder(route: Route) -> Call:
    """A request for a route without a seeded case: unknown ids, an empty JSON body."""
    url = route.path.replace("/*", "/")
    while "{" in url:
        start, end = url.index("{"), url.index("}")
        url = url[:start] + str(uuid.uuid4()) + url[end + 1 :]
    return Call(route.method, url, {} if route.method in ("POST", "PUT", "PATCH") else None)


def send(w: World, call: Call, caller: Caller) -> Any:
    headers = dict(call.headers)
    if caller.name in w.keys:
        headers["Authorization"] = f"Bearer {w.keys[caller.name]}"
    with w.client.stream(
        call.method, call.url, json=call.json, content=call.content, headers=headers
    ) as response:
        # An event stream never ends: its status and headers are the answer.
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    return response


def mismatch(route: Route, caller: Caller, response: Any, *, seeded: bool) -> str | None:
    """What is wrong with ``response`` for ``caller`` on ``route`` (None: as expected)."""
    want, got = expected(route.rule, caller), response.status_code
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    if want == "401":
        ok = (
            got == 401
            and body.get("message") == UNAUTHENTICATED
            and response.headers.get("www-authenticate", "").startswith("Bearer")
        )
    elif want == "403":
        ok = got == 403 and body.get("error") == "Forbidden"
        if ok and route.rule is not None and caller.scope is not Scope.ACTOR:
            ok = NEEDED[route.rule[0]] in body["message"]
    elif seeded or route.open:
        ok = 200 <= got < 300
    else:  # only that authorization let it through (an actor's own may be someone else's)
        ok = got not in (401, 403) or (got == 403 and caller.scope is Scope.ACTOR)
    return None if ok else f"{caller.name}: expected {want}, got {got} {response.text[:200]}"


def test_matrix(world: World, route: Route) -> None:
    """One route, every caller: the answer its declared rule implies."""
    assert route.open or route.rule is not None, f"{route.id} has no rule and is not open"
    case = CASES.get(route.id)
    problems = []
    for caller in CALLERS:
        call = case(world) if case is not None else placeholder(route)
        problem = mismatch(route, caller, send(world, call, caller), seeded=case is not None)
        if problem:
            problems.append(problem)
    assert not problems, f"{route.id}:\n" + "\n".join(problems)


def test_the_rights_table_of_docs_security_md_is_the_route_table() -> None:
    text = SECURITY_MD.read_text(encoding="utf-8")
    table = text.split("<!-- rights:start -->")[1].split("<!-- rights:end -->")[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    documented = [(route.strip().strip("`"), right.strip()) for route, right in rows]
    declared = [
        (r.id, "open" if r.rule is None else r.rule[0].value + (", own" if r.rule[1] else ""))
        for r in app_routes()
    ]
    assert sorted(documented) == sorted(declared)


def test_every_seeded_case_names_a_route_of_the_app() -> None:
    assert set(CASES) - {r.id for r in app_routes()} == set()


def test_lease_ids_are_shown_to_admin_keys_only(world: World) -> None:
    for caller in [
        c for c in CALLERS if c.scope is not None and c.scope is not Scope.ACTOR or c.own
    ]:
        detail = send(world, CASES["GET /uows/{uow_id}"](world), caller).json()
        history = send(world, CASES["GET /uows/{uow_id}/history"](world), caller).json()
        checkout = [t for t in history["transitions"] if (t["details"] or {}).get("lease_id")]
        admin = caller.scope is Scope.ADMIN
        assert ("lease_id" in detail) is admin, caller.name
        assert bool(checkout) is admin, caller.name
