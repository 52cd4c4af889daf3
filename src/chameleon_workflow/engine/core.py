"""The composition root of the engine: one object wiring the services to one database."""

from __future__ import annotations

from ..settings import Settings
from ..store import faults, migrate
from ..store.database import Database
from .audit import AuditTrail
from .clock import Clock, utcnow
from .instances import InstanceService
from .interventions import InterventionService
from .keys import KeyService
from .killswitch import KillSwitch
from .maintenance import MaintenanceService
from .memory import MemoryService
from .runtime import Runtime
from .scheduler import Scheduler
from .templates import TemplateService, yaml_budget
from .topology import TopologyCache
from .toxic import ToxicFilter
from .waiver import WaiverService


class Engine:
    def __init__(
        self, settings: Settings, *, db: Database | None = None, clock: Clock = utcnow
    ) -> None:
        self.settings = settings
        self.db = db or Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            sqlite_busy_timeout=settings.sqlite_busy_timeout_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        self.clock = clock
        self.topologies = TopologyCache(self.db, settings.topology_cache_size)
        self.templates = TemplateService(self.db, clock, yaml_budget(settings))
        self.instances = InstanceService(self.db, self.topologies, self.templates, clock)
        self.runtime = Runtime(
            self.db,
            self.topologies,
            clock,
            experience=settings.experience_validation,
            dci_failover_model=settings.dci_failover_model,
        )
        self.maintenance = MaintenanceService(self.db, settings, clock)
        self.interventions = InterventionService(self.db, clock)
        self.toxic = ToxicFilter(self.db, clock)
        self.memory = MemoryService(self.db, self.topologies, clock)
        self.audit = AuditTrail(self.db, clock)
        self.waivers = WaiverService(self.db, self.topologies, clock)
        self.kill_switch = KillSwitch(self.db, clock)
        self.keys = KeyService(
            self.db,
            clock,
            pepper=settings.api_key_pepper,
            cache_seconds=settings.auth_cache_seconds,
        )

    def scheduler(self, *, tick_seconds: float | None = None) -> Scheduler:
        """The background services on their schedules (zombie reclaim, stale tokens, memory
        decay, intervention expiry), one replica per job; not started. The server's lifespan and
        ``chameleon scheduler run`` start and stop it."""
        return Scheduler(self.maintenance, self.settings, tick_seconds=tick_seconds)

    def upgrade_schema(self) -> None:
        migrate.upgrade(self.db)

    def require_schema(self, subject: str = "the database") -> None:
        """Raise unless the database is reachable and at this code's schema revision.

        ``SchemaNotCurrent`` for a missing or outdated schema, ``DatabaseUnavailable`` when it
        cannot be reached; ``subject`` names the database in the message.
        """
        try:
            migrate.require_current(self.db, subject)
        except faults.FAULTS as exc:
            fault = faults.unavailable(exc, self.db.url, subject)
            if fault is None:
                raise
            raise fault from exc

    def close(self) -> None:
        self.db.dispose()
