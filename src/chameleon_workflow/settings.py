"""Typed settings, read once from the environment (prefix ``CHAMELEON_``) and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.enums import ZombiePolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAMELEON_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///chameleon.db",
        description="SQLAlchemy URL; the default is an SQLite file in the working directory.",
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Wait for a free pooled connection before a 503."
    )
    db_connect_timeout_seconds: int = Field(
        default=10, ge=1, description="PostgreSQL: give up connecting after this long."
    )
    sqlite_busy_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        description="SQLite: wait for another process's write lock before a 503.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Request body cap.")

    # Security (docs/security.md).
    auth_enabled: bool = Field(
        default=True,
        description="Require an API key on every route but health, readiness, metrics and "
        "static assets. Only 'chameleon serve --insecure-no-auth' (loopback only) turns it off.",
    )
    api_key_pepper: str | None = Field(
        default=None,
        description="Secret keying the HMAC that API key secrets are stored as; keep it out of "
        "the database. Changing it invalidates every key.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a process trusts a key's row: revocation and expiry take effect "
        "within this time.",
    )

    # Background services.
    scheduler_enabled: bool = True
    zombie_interval_seconds: float = Field(default=60.0, gt=0)
    zombie_timeout_seconds: int = Field(default=300, gt=0)
    zombie_max_reclaims: int = Field(default=3, ge=0)
    stale_token_interval_seconds: float = Field(default=60.0, gt=0)
    memory_decay_hour_utc: int = Field(default=2, ge=0, le=23)
    memory_decay_minute_utc: int = Field(default=0, ge=0, le=59)
    memory_retention_days: int = Field(default=90, gt=0)
    maintenance_batch_size: int = Field(default=5_000, gt=0)
    leader_lease_seconds: float = Field(default=30.0, gt=0)
    zombie_policy: ZombiePolicy = Field(
        default=ZombiePolicy.FAIL,
        description="What a reclaim does when neither the workflow nor the role chooses.",
    )
    maintenance_batch_pause_seconds: float = Field(
        default=0.0, ge=0, description="Pause between two batches of a sweep or decay run."
    )
    replica_id: str | None = Field(
        default=None,
        description="This replica's name in leases and run records (default: host-pid-random).",
    )

    # Workflow definitions: how far YAML aliases may expand a document, and how many
    # instances' parsed topologies each process keeps in memory.
    yaml_max_nodes: int = Field(
        default=500_000,
        ge=1,
        description="Most YAML nodes a definition may have once aliases and merge keys expand.",
    )
    yaml_max_expansion: float = Field(
        default=10.0,
        ge=1,
        description="Most a definition's text may grow through aliases, as a multiple of its size.",
    )
    topology_cache_size: int = Field(
        default=1024, ge=1, description="Instances whose topology each process keeps (LRU)."
    )
