"""Scheduled jobs of the kernel and the plugins: APScheduler 3 on every node, one runner per job run.

Every node runs the scheduler; each run of a job first takes the job's cluster-wide
try-lock (a PostgreSQL advisory lock, ``flock`` on SQLite), so with several nodes
exactly one runs it and the others skip that tick. Jobs are idempotent. A job that
raises is logged with its name and the scheduler goes on; the next tick runs it again.
A run whose database connection went stale (the database restarted) is retried once
at once on a fresh connection.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import time
from collections.abc import Iterable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import DBAPIError

from segmently.db.locks import try_lock
from segmently.hookspecs import JobSpec
from segmently.kernel import Kernel

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How one run of a job went."""

    RAN = "ran"
    SKIPPED = "skipped"  # another node (or process) holds the job's lock
    FAILED = "failed"


class Jobs:
    """Every job by name: the kernel's first, then each enabled plugin's."""

    def __init__(self, kernel: Kernel, kernel_jobs: Iterable[JobSpec]) -> None:
        self.kernel = kernel
        self.specs: dict[str, JobSpec] = {}
        self.owners: dict[str, str] = {}
        for spec in kernel_jobs:
            self.specs[spec.name] = spec
            self.owners[spec.name] = "kernel"
        for plugin, specs in kernel.plugins.jobs().items():
            for spec in specs:
                if spec.name in self.specs:
                    log.error(
                        "plugin %s declares job %s, which %s already has; ignored",
                        plugin,
                        spec.name,
                        self.owners[spec.name],
                    )
                    continue
                self.specs[spec.name] = spec
                self.owners[spec.name] = plugin

    async def run(self, name: str) -> Outcome:
        """Run the job ``name`` once under its cluster lock; never raises for the job's own errors.

        Raises:
            KeyError: No job has that name.
        """
        spec = self.specs[name]
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                async with try_lock(self.kernel.db, f"job:{name}") as held:
                    if not held:
                        log.debug("job %s skipped: another node runs it", name, extra={"job": name})
                        return Outcome.SKIPPED
                    await spec.func()
                break
            except DBAPIError as exc:
                # The database restarted or failed over since the pool last used this
                # connection: SQLAlchemy has dropped the stale ones, and jobs are
                # idempotent, so one more go on a fresh connection is safe.
                if exc.connection_invalidated and attempt == 1:
                    log.warning("job %s lost its database connection; retrying", name)
                    continue
                log.exception("job %s failed", name, extra={"job": name, "owner": self.owners[name]})
                return Outcome.FAILED
            except Exception:
                log.exception("job %s failed", name, extra={"job": name, "owner": self.owners[name]})
                return Outcome.FAILED
        log.debug(
            "job %s ran in %.3f s",
            name,
            time.perf_counter() - started,
            extra={"job": name, "owner": self.owners[name]},
        )
        return Outcome.RAN


def trigger_of(spec: JobSpec) -> BaseTrigger:
    """The APScheduler trigger of a job: every ``seconds``, else its crontab (UTC)."""
    if spec.seconds is not None:
        return IntervalTrigger(seconds=spec.seconds, timezone=dt.UTC)
    if spec.cron is not None:
        return CronTrigger.from_crontab(spec.cron, timezone=dt.UTC)
    raise ValueError(f"job {spec.name} has neither seconds nor cron")


class Scheduler:
    """APScheduler driving :class:`Jobs` in the app's event loop."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self._aps = AsyncIOScheduler(timezone=dt.UTC)

    def start(self) -> None:
        """Schedule every job and start ticking (call inside the running event loop)."""
        for name, spec in self.jobs.specs.items():
            try:
                trigger = trigger_of(spec)
            except ValueError as exc:
                log.error("%s; not scheduled", exc, extra={"job": name})
                continue
            self._aps.add_job(
                self.jobs.run,
                trigger,
                args=[name],
                id=name,
                name=name,
                max_instances=1,  # a slow run is never overlapped by the next tick on this node
                coalesce=True,
                misfire_grace_time=None,
            )
        self._aps.start()

    def shutdown(self) -> None:
        """Stop ticking; a run in progress finishes on its own."""
        if self._aps.running:
            self._aps.shutdown(wait=False)
