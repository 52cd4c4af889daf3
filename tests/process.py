"""Real `chameleon` processes for tests: the command, its environment, a served port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

STARTUP_SECONDS = 30  # an upper bound for polling, not a measured speed


def chameleon_command() -> str:
    local = Path(sys.executable).parent / "chameleon"
    found = str(local) if local.exists() else shutil.which("chameleon")
    assert found, "the chameleon command is not installed"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **settings: str) -> dict[str, str]:
    """This process's environment without its CHAMELEON_* settings, plus the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAMELEON_")}
    env.update(
        CHAMELEON_DATABASE_URL=database_url,
        CHAMELEON_SCHEDULER_ENABLED="false",
        CHAMELEON_IMPORT_EXAMPLES="false",
    )
    env.update(settings)
    return env


def cli(env: dict[str, str], *args: str) -> None:
    """Run one `chameleon` command, which must succeed."""
    done = subprocess.run(
        [chameleon_command(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def create_key(env: dict[str, str], scope: str = "admin") -> str:
    """A new API key made with `chameleon keys create` (printed on stdout)."""
    done = subprocess.run(
        [chameleon_command(), "keys", "create", "--scope", scope],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout.strip()


def wait_until_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            health = httpx.get(f"{base}/health", timeout=1)
            if health.status_code == 200:
                return health.json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not up after {STARTUP_SECONDS}s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """`chameleon serve` on a free port with ``env``, its output in ``log``: (base URL, /health)."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [chameleon_command(), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        health = wait_until_up(base, proc, log)
        yield base, health
    finally:
        stop(proc)
