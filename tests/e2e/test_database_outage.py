"""PostgreSQL goes away under a running `chameleon serve`, then comes back.

A TCP proxy of the test sits between the server process and PostgreSQL. Cut: requests get
503 JSON (``DatabaseUnavailable``, ``Retry-After``) on a kept connection, ``/ready`` is 503,
``/health`` stays 200, the scheduler logs one line per failed tick. Restored: the same
process answers again and its scheduler runs again, with no restart.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.tcp_proxy import TcpProxy, proxy_to
from tests.process import server_env, serving

pytestmark = pytest.mark.postgres

PASSWORD = "s3cret"  # trust auth ignores it; it must show up nowhere
RECOVERY_SECONDS = 60  # an upper bound for polling, not a measured speed


@dataclass
class Server:
    base: str
    port: int
    proxy: TcpProxy
    log: Path

    def get(self, conn: http.client.HTTPConnection, path: str) -> tuple[int, dict[str, str], Any]:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert not resp.will_close, (path, resp.status, body)  # the connection is kept
        return resp.status, dict(resp.getheaders()), json.loads(body)


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[Server]:
    target = make_url(pg_url)
    with proxy_to(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(port=proxy.port, password=PASSWORD).render_as_string(hide_password=False)
        env = server_env(
            url,
            CHAMELEON_SCHEDULER_ENABLED="true",
            CHAMELEON_LEADER_LEASE_SECONDS="1.5",  # a tick every 0.5 s
            CHAMELEON_ZOMBIE_INTERVAL_SECONDS="0.5",
            CHAMELEON_STALE_TOKEN_INTERVAL_SECONDS="0.5",
            CHAMELEON_AUTH_ENABLED="false",  # database faults are under test, not keys
        )
        log = tmp_path / "server.log"
        with serving(env, log) as (base, _):
            yield Server(base, int(base.rsplit(":", 1)[1]), proxy, log)


def _runs(base: str) -> int:
    """How many runs are recorded (every page of the list)."""
    count = 0
    params: dict[str, Any] = {"limit": 500}
    while True:
        runs = httpx.get(f"{base}/admin/maintenance-runs", params=params, timeout=10)
        assert runs.status_code == 200, runs.text
        count += len(runs.json()["items"])
        if runs.json()["next_cursor"] is None:
            return count
        params = {"limit": 500, "cursor": runs.json()["next_cursor"]}


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, f"not within {RECOVERY_SECONDS}s: {what}"
        time.sleep(0.2)


@pytest.fixture
def conn(server: Server) -> Iterator[http.client.HTTPConnection]:
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    yield c
    c.close()


def test_a_cut_database_gives_503_then_the_server_recovers_alone(
    server: Server, conn: http.client.HTTPConnection
) -> None:
    assert server.get(conn, "/templates")[0] == 200
    assert server.get(conn, "/ready")[0] == 200
    sock = conn.sock

    server.proxy.cut()
    for path in ("/templates", "/admin/maintenance-runs", "/ready", "/templates"):
        status, headers, body = server.get(conn, path)
        assert status == 503, (path, body)
        assert body["error"] == "DatabaseUnavailable" and "database" in body["message"], body
        assert int(headers["retry-after"]) >= 1
    conn.request("POST", "/actors", body=json.dumps({"name": "a", "type": "HUMAN"}),
                 headers={"content-type": "application/json"})  # fmt: skip
    resp = conn.getresponse()
    assert resp.status == 503 and json.loads(resp.read())["error"] == "DatabaseUnavailable"
    assert server.get(conn, "/health")[0] == 200  # liveness touches no database
    assert conn.sock is sock  # one connection all along: nothing was dropped
    _wait_for(lambda: "scheduler tick failed: " in server.log.read_text(), "a failed tick")

    server.proxy.restore()
    seen: set[int] = set()

    def answers() -> bool:
        status = server.get(conn, "/templates")[0]
        seen.add(status)
        return status == 200

    _wait_for(answers, "requests succeed again")
    assert seen <= {200, 503}
    assert server.get(conn, "/ready")[0] == 200
    before = _runs(server.base)
    _wait_for(lambda: _runs(server.base) > before, "the scheduler runs again")

    text = server.log.read_text()
    assert "Traceback" not in text and " 500 " not in text, text
    assert PASSWORD not in text
    assert "database: postgresql+psycopg://postgres:***@127.0.0.1" in text  # the banner
