"""Apply the Alembic migrations shipped inside the package, and tell whether a database has them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from ..domain.errors import SchemaNotCurrent
from .database import Database

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
UPGRADE_HINT = "run 'chameleon db upgrade'"


def alembic_config(db: Database | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if db is not None:
        cfg.set_main_option("sqlalchemy.url", db.url.render_as_string(hide_password=False))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` in one transaction."""
    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(db: Database) -> frozenset[str]:
    """The revision(s) the database is at (empty without a schema); creates nothing."""
    with db.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def require_current(db: Database, subject: str) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database is at the shipped head revision.

    An SQLite file that does not exist is not created (connecting would create it).
    Connection failures propagate as the driver raised them.
    """
    missing = db.missing_file
    if missing is not None:
        raise SchemaNotCurrent(
            f"{subject} does not exist: {UPGRADE_HINT} to create it", reason="no_database_file"
        )
    current, heads = current_revisions(db), head_revisions()
    if current == heads:
        return
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current and not current <= known:
        raise SchemaNotCurrent(
            f"{subject} has a newer Chameleon schema ({', '.join(sorted(current))}) than this "
            "version knows: upgrade Chameleon",
            reason="schema_newer",
        )
    raise SchemaNotCurrent(
        f"{subject} has no Chameleon schema (or an older one): {UPGRADE_HINT}",
        reason="schema_not_current",
    )
