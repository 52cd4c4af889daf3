"""schemathesis against a live server: no 5xx, and every status and body is the documented one.

A bounded budget (20 cases per operation, seeded) on a fresh SQLite database with the
bundled examples imported; about a minute on two cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.live import live_server

pytestmark = pytest.mark.slow

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance"
)


def test_the_api_keeps_its_description(tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with live_server(tmp_path, examples=True) as (base, key):
        done = subprocess.run(
            [str(schemathesis), "run", f"{base}/openapi.json", "--max-examples", "20",
             "--header", f"Authorization: Bearer {key}",
             # it learns key ids from GET /admin/keys and would revoke the key it calls with
             "--exclude-path", "/admin/keys/{key_id}/revoke",
             "--exclude-path", "/api/interventions/stream",  # an endless event stream
             "--checks", CHECKS, "--workers", "2", "--seed", "7", "--no-color",
             "--generation-database", "none", "--request-timeout", "30"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
        log = (tmp_path / "server.log").read_text()
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Traceback" not in log, log[-4000:]
