"""Typed settings, read once from the environment (prefix ``CHAMELEON_``) and passed down."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .domain.enums import ExperienceValidation, ZombiePolicy

# The names of this machine every server answers to, whatever it binds (CHAMELEON_ALLOWED_HOSTS).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


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
    metrics_public: bool = Field(
        default=True,
        description="Serve /metrics without a key (for a scraper on the operators' network); "
        "false: a viewer, operator or admin key is needed.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a process trusts a key's row: revocation and expiry take effect "
        "within this time.",
    )
    rate_limit_enabled: bool = Field(
        default=True, description="Rate limits on failed authentication and admin requests."
    )
    rate_limit_auth_failures_per_minute: int = Field(
        default=60,
        ge=0,
        description="Failed authentications (a key was sent but refused) per client address "
        "per minute before its requests are answered 429; 0: no limit.",
    )
    rate_limit_actions_per_minute: int = Field(
        default=600,
        ge=0,
        description="Requests to admin and operator routes per API key per minute; 0: no limit.",
    )
    rate_limit_max_tracked: int = Field(
        default=10_000,
        ge=1,
        description="Addresses and keys each limiter remembers (least recently seen leave first).",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_NAMES),
        description="Host header values the server answers (comma-separated or a JSON list; "
        "'*.example.com' for subdomains, '*' for any); 'serve --host X' adds X.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins whose pages may call the API from a browser (CORS); empty: none.",
    )

    # Background services.
    scheduler_enabled: bool = True
    zombie_interval_seconds: float = Field(default=60.0, gt=0)
    zombie_timeout_seconds: int = Field(default=300, gt=0)
    zombie_max_reclaims: int = Field(default=3, ge=0)
    stale_token_interval_seconds: float = Field(default=60.0, gt=0)
    intervention_expiry_interval_seconds: float = Field(default=30.0, gt=0)
    memory_decay_hour_utc: int = Field(default=2, ge=0, le=23)
    memory_decay_minute_utc: int = Field(default=0, ge=0, le=59)
    memory_retention_days: int = Field(default=90, gt=0)
    maintenance_batch_size: int = Field(default=5_000, gt=0)
    leader_lease_seconds: float = Field(default=30.0, gt=0)
    zombie_policy: ZombiePolicy = Field(
        default=ZombiePolicy.FAIL,
        description="What a reclaim does when neither the workflow nor the role chooses.",
    )
    experience_validation: ExperienceValidation = Field(
        default=ExperienceValidation.ARCHIVE,
        description="What happens to memories learned from a base UOW that ends ABANDONED "
        "(or from its children): archive, delete or keep. Held memories are always kept.",
    )
    maintenance_batch_pause_seconds: float = Field(
        default=0.0, ge=0, description="Pause between two batches of a sweep or decay run."
    )
    replica_id: str | None = Field(
        default=None,
        description="This replica's name in leases and run records (default: host-pid-random).",
    )

    # The pilot's live stream (GET /api/interventions/stream, docs/pilot.md).
    pilot_events_retention_hours: float = Field(
        default=24.0,
        gt=0,
        description="Live events older than this are pruned (hourly, by servers running the "
        "scheduler); a client reconnecting later replays only what is left.",
    )
    pilot_stream_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="A keep-alive comment on a quiet stream this often."
    )
    pilot_stream_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="SQLite (or PostgreSQL while its LISTEN connection is down): look for new "
        "events this often.",
    )
    pilot_stream_sweep_seconds: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL: besides NOTIFY, look for new events this often (a safety net).",
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
    dci_failover_model: str | None = Field(
        default=None,
        description="Dynamic Context Injection: the model an actor is given when an injector "
        "asks for one the workflow does not list in ai_context.allowed_models; unset: no "
        "override (the actor keeps its own model).",
    )
    topology_cache_size: int = Field(
        default=1024, ge=1, description="Instances whose topology each process keeps (LRU)."
    )

    # Operations: the log format, and alerts (docs/operations.md, "Alerts"). A threshold of
    # 0 switches its alert off.
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines of `serve` and `scheduler run`: text or JSON."
    )
    alert_webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Where alerts are POSTed (comma-separated or a JSON list; http or https).",
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the signature header (required with URLs)."
    )
    alert_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    alert_retries: int = Field(default=3, ge=0, le=20)
    alert_backoff_seconds: float = Field(
        default=1.0, ge=0, description="First retry pause; it doubles with each retry."
    )
    alert_queue_size: int = Field(default=100, ge=1, description="Alerts waiting for delivery.")
    alert_zombies_reclaimed: int = Field(
        default=0, ge=0, description="Alert when one sweep reclaims at least this many."
    )
    alert_epsilon_queue_depth: int = Field(
        default=0, ge=0, description="Alert when this many UOWs wait for EPSILON roles."
    )
    alert_heartbeat_age_seconds: float = Field(
        default=0, ge=0, description="Alert when the oldest ACTIVE heartbeat is this old."
    )
    alert_maintenance_failures: bool = Field(
        default=True, description="Alert when a scheduled maintenance run fails."
    )
    alert_maintenance_missed_intervals: float = Field(
        default=3,
        ge=0,
        description="Alert when a job has not succeeded for this many of its intervals.",
    )

    @field_validator("alert_webhook_urls", "allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [u.strip() for u in text.split(",") if u.strip()]
        return value

    @field_validator("dci_failover_model")
    @classmethod
    def _blank_is_unset(cls, model: str | None) -> str | None:
        return model.strip() or None if model is not None else None

    @field_validator("alert_webhook_urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        return urls

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        if not hosts:
            raise ValueError("name at least one host (or '*' for any)")
        return [host_pattern(h) for h in hosts]

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            exact = origin == f"{parts.scheme}://{parts.netloc}" and parts.hostname
            if origin != "*" and not (parts.scheme in ("http", "https") and exact):
                raise ValueError(
                    f"not an origin: {origin!r} (scheme://host[:port], no path; or '*')"
                )
        return origins

    @model_validator(mode="after")
    def _signed_alerts(self) -> Settings:
        if self.alert_webhook_urls and not self.alert_webhook_secret:
            raise ValueError("CHAMELEON_ALERT_WEBHOOK_URLS needs CHAMELEON_ALERT_WEBHOOK_SECRET")
        return self


def host_pattern(entry: str) -> str:
    """One CHAMELEON_ALLOWED_HOSTS entry in the form requests are compared with: lower case,
    no brackets around an IPv6 address, no trailing dot. A name with a port, scheme or path
    is refused (the Host header's port is not compared)."""
    host = entry.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host[2:] if host.startswith("*.") else host
    if host != "*" and (not name or any(c in name for c in ":/*@ ")):
        raise ValueError(
            f"not a host name: {entry!r} (a name or address without scheme or port, "
            "'*.example.com' for its subdomains, or '*')"
        )
    return host
