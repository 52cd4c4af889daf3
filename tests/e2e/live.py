"""A real ``chameleon serve`` process on a fresh migrated database, for tests that need one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.test_examples_over_http import (
    _chameleon,
    _free_port,
    _server_env,
    _wait_until_up,
)


def cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [_chameleon(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


@contextmanager
def live_server(workdir: Path, *, examples: bool = False) -> Iterator[str]:
    """Base URL of a server on a new SQLite database (with the bundled examples if asked)."""
    env = _server_env(f"sqlite:///{workdir / 'chameleon.db'}")
    cli(env, "db", "upgrade")
    if examples:
        cli(env, "workflow", "import-examples")
    port = _free_port()
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_chameleon(), "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
