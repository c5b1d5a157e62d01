"""Group commit of ``/api/v1/events/track`` and ``/batch``: a site's concurrent requests share a transaction.

Under load much of a request's cost is its transaction: a pooled connection, round trips
for the statements, a commit that waits for the write-ahead log. A request starts a
transaction at once while fewer than :data:`PARALLEL` of its site are under way (so an idle
server adds no wait); otherwise it queues, and the queued requests go together in the next
transaction (up to :data:`MAX_GROUP` events; a batch is never split). Each request still
gets its own answer (its events stored, duplicate or refused), only after the commit that
stored them; a batch stays all or nothing: if the transaction fails, every request in it
fails (500) and the clients resend with the same event ids. Validation happens before, per
request, so a malformed request is refused alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field

from segmently.db.base import utcnow
from segmently.domain.events.ingest import Accepted, Ingestor, Tally, ingested_event
from segmently.domain.events.schemas import IngestOut
from segmently.domain.sites.keys import SiteKey
from segmently.hookspecs import IngestedEvent

MAX_GROUP = 1000
"""Events per transaction at most (a bigger request goes alone)."""
PARALLEL = 4
"""Transactions of one site under way at once: while they wait for their commits, the next
requests gather for the next ones (one at a time would leave the database idle between
commits)."""


@dataclass(slots=True)
class _Waiting:
    accepted: list[Accepted]
    rejected: dict[str, int]
    done: asyncio.Future[tuple[IngestOut, list[IngestedEvent]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit:
    """Queues validated events per site; up to :data:`PARALLEL` transactions of a site at a time."""

    def __init__(self, ingestor: Ingestor) -> None:
        self.ingestor = ingestor
        self._queues: dict[str, list[_Waiting]] = {}
        self._running: dict[str, int] = {}  # transactions under way per site
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self, site: SiteKey, accepted: list[Accepted], rejected: dict[str, int]
    ) -> tuple[IngestOut, list[IngestedEvent]]:
        """Store one request's validated events with whatever else of its site is waiting."""
        waiting = _Waiting(accepted, rejected)
        self._queues.setdefault(site.site_id, []).append(waiting)
        running = self._running.get(site.site_id, 0)
        if running < PARALLEL:  # else it goes with the next group of a transaction under way
            self._running[site.site_id] = running + 1
            task = asyncio.create_task(self._drain(site))
            self._tasks.add(task)  # keep a reference until it ends
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(waiting.done)

    async def _drain(self, site: SiteKey) -> None:
        queue = self._queues[site.site_id]
        try:
            while queue:
                group: list[_Waiting] = []
                size = 0
                while queue and (not group or size + len(queue[0].accepted) <= MAX_GROUP):
                    item = queue.pop(0)
                    group.append(item)
                    size += len(item.accepted)
                await self._commit(site, utcnow(), group)
        finally:
            self._running[site.site_id] -= 1
            if not self._running[site.site_id]:
                del self._running[site.site_id]
                if not queue:
                    del self._queues[site.site_id]

    async def _commit(self, site: SiteKey, now: dt.datetime, group: list[_Waiting]) -> None:
        try:
            answers = await self._store(site, now, group)
        except BaseException as exc:  # every request of the failed transaction fails with it
            failure = exc if isinstance(exc, Exception) else RuntimeError("the server is stopping")
            for item in group:
                if not item.done.done():
                    item.done.set_exception(failure)
            if not isinstance(exc, Exception):
                raise
            return
        for item, answer in zip(group, answers, strict=True):
            if not item.done.done():
                item.done.set_result(answer)

    async def _store(
        self, site: SiteKey, now: dt.datetime, group: list[_Waiting]
    ) -> list[tuple[IngestOut, list[IngestedEvent]]]:
        accepted: list[Accepted] = []
        for owner, item in enumerate(group):
            for a in item.accepted:
                a.owner, a.index = owner, len(accepted)  # index: the order within the transaction
                accepted.append(a)
        tallies, stored = await self.ingestor.commit(site, now, accepted, [w.rejected for w in group])
        ingested: list[list[IngestedEvent]] = [[] for _ in group]
        for a, event_id in stored:
            ingested[a.owner].append(ingested_event(site.site_id, a, event_id))
        return [(_out(tally), events) for tally, events in zip(tallies, ingested, strict=True)]


def _out(tally: Tally) -> IngestOut:
    return IngestOut(accepted=tally.stored, duplicates=tally.duplicates, rejected=tally.rejected)
