"""``GET /api/v1/projects/{project_id}/events/live``: the dashboard's live events feed."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, FromQuery, QueryParameter

from segmently.domain.events.live import RANGES, LiveFeed, live_feed, parse_query
from segmently.domain.sites.services import get_site
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.tiers.guards import require_feature_for
from segmently.tiers.plans import ANALYTICS_LIVE_EVENTS


class LiveEventsController(Controller):
    """A site's events as they arrive; see ``docs/live_events.md`` for the cursor."""

    path = "/api/v1/projects/{project_id:str}/events"
    tags = ["events"]

    @get("/live", operation_id="getLiveEvents")
    async def live_events(
        self,
        project_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        event_type: Annotated[
            str | None, QueryParameter(name="type", description="An event name; `all` or none for all")
        ] = None,
        visitor: Annotated[str | None, QueryParameter(description="Part of a visitor id, any case")] = None,
        range_: Annotated[
            str | None,
            QueryParameter(name="range", description=f"One of {', '.join(RANGES)}; all by default"),
        ] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
        tz: Annotated[
            str | None, QueryParameter(description="Time zone of `range=today` (IANA name); UTC by default")
        ] = None,
    ) -> LiveFeed:
        """The newest events (Professional+); with the last ``cursor``, only those that arrived since."""
        query = parse_query(event_type, visitor, range_, limit, cursor, tz)
        site = await get_site(db_session, actor, project_id)
        await require_feature_for(kernel, actor.organization, ANALYTICS_LIVE_EVENTS.key)
        return await live_feed(db_session, site.id, query)
