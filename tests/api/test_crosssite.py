"""No cross-site requests: body types, allowed hosts and CORS (issue 9).

A page on another site can make a browser POST a form, a multipart body or text/plain
without asking first; every operation refuses those (415). A Host the server is not
configured for is refused (400). CORS headers appear only for configured origins.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from chameleon_workflow.api.app import create_app
from chameleon_workflow.api.crosssite import YAML_TYPES, host_allowed, request_host
from chameleon_workflow.cli import allow_bind_host
from chameleon_workflow.settings import Settings
from tests.api.conftest import YAML, Run, items, ok, problem
from tests.conftest import bearer
from tests.flows import fixture_text
from tests.process import (
    chameleon_command,
    cli,
    free_port,
    server_env,
    stop,
    wait_until_up,
)

WORKFLOW = fixture_text("routing_workflow.yml")
# What a browser sends cross-site without a preflight, and a body without any type.
SIMPLE_TYPES = (
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "TEXT/PLAIN",
)
APP = "https://app.example"


def _post(client: TestClient, path: str, body: str | bytes, ctype: str | None) -> httpx.Response:
    headers = {"content-type": ctype} if ctype is not None else {}
    return client.post(path, content=body, headers=headers)


@pytest.fixture
def cors_client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    """The app with CORS on for one origin."""
    app = create_app(settings.model_copy(update={"cors_origins": [APP]}))
    with TestClient(app, raise_server_exceptions=False, headers=bearer(admin_key)) as c:
        yield c


def _preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/workflow/checkout",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


# --- unhappy paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", [*SIMPLE_TYPES, None, "application/json"])
def test_a_template_import_a_browser_could_send_cross_site_is_415_and_imports_nothing(
    client: TestClient, ctype: str | None
) -> None:
    found = problem(_post(client, "/templates", WORKFLOW, ctype), 415, "application/yaml")
    assert found["error"] == "UnsupportedMediaType"
    assert found["details"]["accepted"] == list(YAML_TYPES)
    assert found["details"]["received"] == (ctype.split(";")[0].lower() if ctype else None)
    assert items(client.get("/templates")) == []


def test_a_form_encoded_checkout_is_415_and_leases_nothing(run: Run) -> None:
    before = run.api.state(run.uow_id)
    form = {"actor_id": run.actor, "role_id": run.roles["Triage"]}
    found = problem(run.api.c.post("/workflow/checkout", data=form), 415, "application/json")
    assert "application/x-www-form-urlencoded" in found["message"]
    body = json.dumps(form)
    for ctype in (*SIMPLE_TYPES, None, "application/yaml"):
        problem(_post(run.api.c, "/workflow/checkout", body, ctype), 415, "Content-Type")
    assert run.api.state(run.uow_id) == before
    assert run.take("Triage")["uow_id"] == run.uow_id  # the JSON request still works


def test_an_untyped_body_is_refused_on_every_json_operation(run: Run) -> None:
    body = json.dumps({"name": "x", "type": "HUMAN"})
    found = problem(_post(run.api.c, "/actors", body, None), 415, "without a Content-Type")
    assert found["details"] == {"accepted": ["application/json"], "received": None}
    admin = '{"dry_run": false}'
    problem(_post(run.api.c, "/admin/run-zombie-protocol", admin, "text/plain"), 415)
    assert items(run.api.c.get("/admin/maintenance-runs")) == []


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "localhost.evil.example",  # DNS rebinding: a name of the attacker's pointing here
        "127.0.0.2",
        "[::2]:80",
        "",
    ],
)
def test_a_foreign_host_is_400_on_every_path(client: TestClient, host: str) -> None:
    for path in ("/templates", "/health"):
        found = problem(client.get(path, headers={"Host": host}), 400, "CHAMELEON_ALLOWED_HOSTS")
        assert found["error"] == "HostNotAllowed"
    answer = client.post("/templates", content=WORKFLOW, headers={"Host": host, **YAML})
    problem(answer, 400, "Host")
    assert answer.headers["x-request-id"]  # refused inside the request id middleware
    assert items(client.get("/templates")) == []


def test_a_request_with_two_hosts_is_400(client: TestClient) -> None:
    twice = client.get("/health", headers=[("host", "testserver"), ("host", "testserver")])
    assert problem(twice, 400, "one Host header", "sent 2")["details"] == {"host": None}


def test_without_configured_origins_no_response_carries_cors_headers(client: TestClient) -> None:
    preflight = _preflight(client, APP)
    assert preflight.status_code == 405  # nothing answers OPTIONS
    simple = client.get("/templates", headers={"Origin": APP})
    for response in (preflight, simple):
        assert not [h for h in response.headers if h.startswith("access-control-")]


def test_a_preflight_from_an_origin_not_configured_gets_no_allow_origin(
    cors_client: TestClient,
) -> None:
    for origin in ("https://evil.example", "http://app.example", "https://app.example:8443"):
        assert "access-control-allow-origin" not in _preflight(cors_client, origin).headers
        answer = cors_client.get("/templates", headers={"Origin": origin})
        assert "access-control-allow-origin" not in answer.headers


def test_bad_host_and_origin_settings_are_refused() -> None:
    for hosts in ("example.com:8000", "http://example.com", "a/b", "*x.example", "", "[::1"):
        with pytest.raises(ValidationError, match="allowed_hosts"):
            Settings(allowed_hosts=hosts)
    for origin in ("app.example", "https://app.example/", "https://app.example/x", "ftp://a"):
        with pytest.raises(ValidationError, match="cors_origins"):
            Settings(cors_origins=origin)


# --- happy paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", [*YAML_TYPES, "application/yaml; charset=utf-8", "TEXT/YAML"])
def test_a_template_import_with_a_yaml_type_works(client: TestClient, ctype: str) -> None:
    assert ok(_post(client, "/templates", WORKFLOW, ctype), 201)["version"] == 1


def test_json_bodies_and_requests_without_a_body_work(client: TestClient) -> None:
    actor = {"name": "a", "type": "HUMAN"}
    for ctype in ("application/json", "application/json; charset=utf-8", "Application/JSON"):
        ok(_post(client, "/actors", json.dumps(actor), ctype), 201)
    ok(client.post("/admin/run-zombie-protocol"))  # no body, no type: the body is optional
    # An empty body of any type is no body (what `curl -X POST -d ''` sends).
    empty = client.post("/admin/run-zombie-protocol", content=b"", headers={"content-type": "x/y"})
    assert ok(empty)["dry_run"] is False


def test_allowed_hosts_match_names_addresses_and_subdomains(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        assert ok(c.get("/health", headers={"Host": "localhost."}))
    for host in ("localhost:8000", "LOCALHOST", "127.0.0.1:1", "[::1]:8000", "[0:0::1]"):
        assert host_allowed(request_host(host.encode()), ("localhost", "127.0.0.1", "::1"))
    patterns = ("*.example.com",)
    assert host_allowed("api.example.com", patterns) and host_allowed("a.b.example.com", patterns)
    assert not host_allowed("example.com", patterns) and not host_allowed("xexample.com", patterns)
    with TestClient(create_app(settings.model_copy(update={"allowed_hosts": ["*"]}))) as c:
        assert ok(c.get("/health", headers={"Host": "anything.example"}))


def test_the_default_hosts_are_loopback_and_lists_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHAMELEON_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("CHAMELEON_CORS_ORIGINS", raising=False)
    assert Settings().allowed_hosts == ["localhost", "127.0.0.1", "::1"]
    assert Settings().cors_origins == []
    monkeypatch.setenv("CHAMELEON_ALLOWED_HOSTS", "Api.Example.COM., [::1], *.internal")
    monkeypatch.setenv("CHAMELEON_CORS_ORIGINS", '["https://a.example", "http://b:8080"]')
    assert Settings().allowed_hosts == ["api.example.com", "::1", "*.internal"]
    assert Settings().cors_origins == ["https://a.example", "http://b:8080"]


def test_a_configured_origin_gets_cors_headers(cors_client: TestClient) -> None:
    preflight = _preflight(cors_client, APP)
    assert preflight.status_code == 200
    allowed = preflight.headers
    assert allowed["access-control-allow-origin"] == APP
    assert set(allowed["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "authorization" in allowed["access-control-allow-headers"].lower()
    answer = cors_client.get("/templates", headers={"Origin": APP})
    assert items(answer) == [] and answer.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


def test_every_operation_with_a_body_declares_415(client: TestClient) -> None:
    spec = ok(client.get("/openapi.json"))
    with_body = [
        op for item in spec["paths"].values() for op in item.values() if "requestBody" in op
    ]
    assert len(with_body) >= 10
    for op in with_body:
        assert "415" in op["responses"], op["operationId"]
    assert set(spec["paths"]["/actors"]["post"]["requestBody"]["content"]) == {"application/json"}


def test_serve_adds_its_address_and_warns_when_it_binds_every_interface(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loopback = ["localhost", "127.0.0.1", "::1"]
    monkeypatch.setenv("CHAMELEON_ALLOWED_HOSTS", "localhost")
    allow_bind_host("chameleon.internal", loopback)
    assert Settings().allowed_hosts == [*loopback, "chameleon.internal"]
    monkeypatch.setenv("CHAMELEON_ALLOWED_HOSTS", "localhost")
    for already in ("localhost", "[::1]"):
        allow_bind_host(already, loopback)
        assert Settings().allowed_hosts == ["localhost"]  # unchanged
    allow_bind_host("10.0.0.5", ["*"])
    assert Settings().allowed_hosts == ["localhost"]
    assert capsys.readouterr().err == ""
    for everywhere in ("0.0.0.0", "::"):
        allow_bind_host(everywhere, loopback)
        assert "set CHAMELEON_ALLOWED_HOSTS" in capsys.readouterr().err
    allow_bind_host("0.0.0.0", [*loopback, "chameleon.example"])
    assert capsys.readouterr().err == ""
    assert Settings().allowed_hosts == ["localhost"]


def test_a_served_process_answers_its_bind_address_and_refuses_a_foreign_host(
    tmp_path: Path,
) -> None:
    """`chameleon serve --host 127.0.0.2` answers Host 127.0.0.2 (added by serve) and
    localhost (the default), and refuses any other Host with the JSON error."""
    env = server_env(f"sqlite:///{tmp_path / 'c.db'}")
    cli(env, "db", "upgrade")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        args = ["serve", "--host", "127.0.0.2", "--port", str(port)]
        proc = subprocess.Popen([chameleon_command(), *args], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.2:{port}"
    try:
        wait_until_up(base, proc, log)  # Host: 127.0.0.2:<port>
        answers: dict[str, Any] = {}
        for host in ("localhost", f"localhost:{port}", "evil.example", f"evil.example:{port}"):
            answers[host] = httpx.get(f"{base}/health", headers={"Host": host}, timeout=10)
    finally:
        stop(proc)
    assert answers["localhost"].status_code == answers[f"localhost:{port}"].status_code == 200
    for host in ("evil.example", f"evil.example:{port}"):
        problem(answers[host], 400, "evil.example", "CHAMELEON_ALLOWED_HOSTS")
