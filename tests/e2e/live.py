"""A real ``chameleon serve`` process on a fresh migrated database, for tests that need one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.process import cli, create_key, server_env, serving


@contextmanager
def live_server(workdir: Path, *, examples: bool = False) -> Iterator[tuple[str, str]]:
    """Base URL of a server on a new SQLite database (with the bundled examples if asked),
    and an admin API key for it."""
    env = server_env(f"sqlite:///{workdir / 'chameleon.db'}")
    cli(env, "db", "upgrade")
    if examples:
        cli(env, "workflow", "import-examples")
    key = create_key(env)
    with serving(env, workdir / "server.log") as (base, _):
        yield base, key
