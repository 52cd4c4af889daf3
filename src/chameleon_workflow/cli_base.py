"""What every command shares: the database it runs on, one-line errors, one exit-code policy.

Exit codes: 0 done; 2 a user error (bad arguments, settings or input, an unknown id, a
database that is missing, unreachable, locked or without the current schema); 1 an internal
failure. Every message is one line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError

from .domain.errors import ChameleonError, DatabaseUnavailable, DefinitionInvalid
from .engine.core import Engine
from .settings import Settings
from .store import faults

EXIT_INTERNAL = 1
EXIT_USAGE = 2

T = TypeVar("T")


class Options:
    """Global options of the command line (set by the app's callback)."""

    debug = False


def fail(message: str, cause: BaseException | None = None) -> typer.Exit:
    """Print ``error: message`` (and with --debug the traceback of ``cause``); exit code 2."""
    if Options.debug and cause is not None:
        traceback.print_exception(cause, file=sys.stderr)
    typer.echo(f"error: {scrub(message)}", err=True)
    return typer.Exit(EXIT_USAGE)


def scrub(text: str) -> str:
    """``text`` without the configured database password."""
    return faults.scrub(text, os.environ.get("CHAMELEON_DATABASE_URL"))


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CHAMELEON_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise fail(f"invalid setting: {problems}", exc) from None


@contextmanager
def engine_for_cli(*, need_schema: bool = True) -> Iterator[Engine]:
    """An engine on the configured database, announced on stderr.

    With ``need_schema`` the database must exist with the current schema. Engine errors and
    database faults become one line and exit code 2; no SQLite file is created on the way.
    """
    engine = Engine(load_settings())
    subject = f"database {engine.db.where}"
    typer.echo(f"database: {engine.db.where}", err=True)
    try:
        if need_schema:
            engine.require_schema(subject)
        yield engine
    except DefinitionInvalid as exc:
        typer.echo("error: workflow definition is invalid:", err=True)
        for v in exc.violations:
            typer.echo(f"  - {v}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except ChameleonError as exc:
        raise fail(exc.message, exc) from exc
    except faults.FAULTS as exc:
        fault = faults.unavailable(exc, engine.db.url, subject)
        if fault is None:
            raise
        raise fail(fault.message, exc) from exc
    finally:
        engine.close()


def retry_while_busy(engine: Engine, call: Callable[[], T], budget_seconds: float) -> T:
    """``call()``, tried again while the SQLite file is locked by another writer, for up to
    ``budget_seconds`` (each try already waits the busy timeout)."""
    deadline = time.monotonic() + budget_seconds
    pause = 0.1
    while True:
        try:
            return call()
        except faults.FAULTS as exc:
            fault = faults.unavailable(exc, engine.db.url, "the database")
            if not _busy(fault) or time.monotonic() + pause > deadline:
                raise
        typer.echo("database is busy (locked by another writer): trying again", err=True)
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _busy(fault: DatabaseUnavailable | None) -> bool:
    return fault is not None and fault.details.get("reason") == "locked"
