"""API keys from the command line. These work on the database directly, so the first key can
be made before any key exists (docs/security.md).

``keys create`` prints the key on stdout (only there, only once); everything else goes to
stderr. Exit codes as everywhere (cli_base): 2 for a user error, 1 for an internal failure.
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli_base import engine_for_cli, fail
from .domain.errors import ChameleonError
from .domain.security import Scope, parse_key
from .engine.audit import KEY_CREATE, KEY_REVOKE, Outcome
from .engine.core import Engine
from .engine.keys import KeyInfo
from .store.database import sqlite_path

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")

LOCAL_ADMIN_NAME = "local admin (make run)"


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise fail(f"{what} must be a UUID, not {text!r}") from None


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="admin, operator, actor or viewer.")],
    actor: Annotated[
        str | None, typer.Option(help="The actor an actor key acts as (its UUID).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name to recognise the key by.")] = None,
    expires_in: Annotated[
        float | None, typer.Option("--expires-in", help="Days until the key expires.")
    ] = None,
) -> None:
    """Create a key and print it on stdout; it is shown this once and stored only hashed."""
    actor_id = _uuid(actor, "--actor") if actor is not None else None
    params = {"scope": scope, "actor_id": actor, "name": name, "expires_in_days": expires_in}
    with engine_for_cli() as engine, _audited(engine, KEY_CREATE, params) as done:
        info, key = engine.keys.create(
            scope, actor_id=actor_id, name=name, expires_in_days=expires_in, created_by=_who()
        )
        done.update(_created(info))
    typer.echo(f"created {info.scope.value} key {info.id} ({info.name})", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List every key (never its secret) with its state: active, expired or revoked."""
    with engine_for_cli() as engine:
        keys = engine.keys.list()
        now = engine.clock()
    if not keys:
        typer.echo("no API keys; create one with 'chameleon keys create --scope admin'", err=True)
        return
    typer.echo(f"{'ID':36}  {'SCOPE':8}  {'STATE':7}  {'LAST USED':20}  NAME (ACTOR)")
    for k in keys:
        actor = f" (actor {k.actor_id})" if k.actor_id else ""
        typer.echo(
            f"{k.id!s:36}  {k.scope.value:8}  {k.state(now):7}  {_when(k.last_used_at):20}  "
            f"{k.name}{actor}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key: refused everywhere within CHAMELEON_AUTH_CACHE_SECONDS."""
    kid = _uuid(key_id, "the key id")
    with engine_for_cli() as engine, _audited(engine, KEY_REVOKE, {"key_id": key_id}) as done:
        info = engine.keys.revoke(kid)
        done.update(key_id=str(info.id), name=info.name, scope=info.scope.value)
    typer.echo(f"revoked {info.scope.value} key {info.id} ({info.name})", err=True)


@keys_app.command("local-admin")
def keys_local_admin(
    file: Annotated[
        Path | None,
        typer.Option(help="Where the key is kept (default: beside the SQLite database file)."),
    ] = None,
) -> None:
    """Make sure a local admin key exists in a file readable only by you (for 'make run')."""
    with engine_for_cli() as engine:
        path = file or default_key_file(engine.db.url)
        existing = _read_key(path)
        if existing is not None and _usable(engine.keys.list(), existing, engine.clock()):
            _make_private(path)
            typer.echo(f"admin key: {path}", err=True)
        else:
            params = {"scope": Scope.ADMIN.value, "name": LOCAL_ADMIN_NAME, "local_admin": True}
            with _audited(engine, KEY_CREATE, params) as done:
                info, key = engine.keys.create(
                    Scope.ADMIN, name=LOCAL_ADMIN_NAME, created_by=_who()
                )
                done.update(_created(info))
            _write_secret(path, key)
            typer.echo(f"created a local admin key in {path} (mode 0600)", err=True)
    typer.echo(
        f'use it: curl -H "Authorization: Bearer $(cat {path})" http://127.0.0.1:8000/instances',
        err=True,
    )


@contextmanager
def _audited(engine: Engine, action: str, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Record the key change in the admin audit trail as ``cli:<user>``: the summary the
    block fills in when it succeeds, or the error that refused it."""
    summary: dict[str, Any] = {}
    try:
        yield summary
    except ChameleonError as refused:
        error = {"error": type(refused).__name__, "message": refused.message}
        engine.audit.record(
            action, by=_who(), parameters=parameters, result=error, outcome=Outcome.REFUSED
        )
        raise
    engine.audit.record(action, by=_who(), parameters=parameters, result={"summary": summary})


def _created(info: KeyInfo) -> dict[str, Any]:
    expires = info.expires_at.isoformat() if info.expires_at else None
    actor = str(info.actor_id) if info.actor_id else None
    return {"key_id": str(info.id), "name": info.name, "scope": info.scope.value,
            "actor_id": actor, "expires_at": expires}  # fmt: skip


def default_key_file(url: object) -> Path:
    """``<database file stem>.admin-key`` beside an SQLite file, else in the working folder."""
    from sqlalchemy.engine import make_url

    path = sqlite_path(make_url(str(url)))
    if path is None:
        return Path("chameleon.admin-key").resolve()
    return path.with_name(path.stem + ".admin-key")


def _read_key(path: Path) -> uuid.UUID | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc
    parsed = parse_key(text)
    return parsed[0] if parsed else None


def _usable(keys: list[KeyInfo], key_id: uuid.UUID, now: datetime) -> bool:
    return any(k.id == key_id and k.state(now) == "active" for k in keys)


def _write_secret(path: Path, key: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}") from exc


def _make_private(path: Path) -> None:
    """Take back the rights of others on a key file someone loosened (mode 0600 again)."""
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
            typer.echo(f"made {path} readable by you only (mode 0600)", err=True)
    except OSError as exc:
        raise fail(f"cannot make {path} private: {exc.strerror or exc}") from exc


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "never"
