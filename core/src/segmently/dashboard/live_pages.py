"""A site's Live events page: stats bar, type pills, visitor search, date range, the newest events.

The table polls ``/sites/{id}/live/rows`` every 3 s with the feed's cursor (the same
``live_feed`` the JSON API answers with), so a poll brings only new events; they are
prepended to the table and the stats bar is swapped out of band. ``static/live.js`` adds
Pause/Resume: while paused, the poll is cancelled before any request is made.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.response import Template

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import page, static_url
from segmently.db.base import utcnow
from segmently.domain.events.live import LiveFeed, LiveQuery, live_feed, parse_query
from segmently.domain.sites.services import get_site
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.tiers.guards import require_feature_for
from segmently.tiers.limits import FeatureNotIncluded
from segmently.tiers.plans import ANALYTICS_LIVE_EVENTS

POLL = "every 3s"
RANGE_LABELS = {
    "all": "All time",
    "today": "Today",
    "1h": "Last 1 hour",
    "24h": "Last 24 hours",
    "7d": "Last 7 days",
}
"""The date range's choices in the order of ``live.RANGES``."""


def ago(at: dt.datetime, now: dt.datetime) -> str:
    """A relative time like the spec's "2m ago"."""
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    if seconds < 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def filters_of(query: LiveQuery) -> dict[str, str]:
    """The filters as query parameters (blank ones left out)."""
    chosen = {"type": query.event_name or "", "visitor": query.visitor or "", "range": query.range}
    return {k: v for k, v in chosen.items() if v and not (k == "range" and v == "all")}


def href(site_id: str, path: str, params: dict[str, str]) -> str:
    """``/sites/{id}/live<path>`` with ``params``."""
    query = urlencode(params)
    return f"/sites/{site_id}/live{path}" + (f"?{query}" if query else "")


def pill_href(site_id: str, filters: dict[str, str], name: str) -> str:
    """The page with the other filters kept and the type ``name`` (``all``: no type)."""
    kept = {k: v for k, v in filters.items() if k != "type"}
    return href(site_id, "", kept if name == "all" else {**kept, "type": name})


def poll_url(site_id: str, query: LiveQuery, feed: LiveFeed) -> str:
    """Where the next poll asks: the same filters and the cursor of this answer."""
    return href(site_id, "/rows", {**filters_of(query), "cursor": feed.cursor})


class LivePages(Controller):
    """``/sites/{id}/live`` and the fragment its table polls."""

    path = "/sites/{site_id:str}/live"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/", name="dashboard:live")
    async def live(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        event_type: Annotated[str | None, QueryParameter(name="type", required=False)] = None,
        visitor: Annotated[str | None, Parameter(required=False)] = None,
        range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
    ) -> Template:
        """The newest events of a site with the filters (Professional+; below it, the upgrade prompt)."""
        query = parse_query(event_type, visitor, range_, None, None, None)
        site = await get_site(db_session, actor, site_id)
        context: dict[str, Any] = {"site": site, "upgrade": None}
        try:
            await require_feature_for(kernel, actor.organization, ANALYTICS_LIVE_EVENTS.key)
        except FeatureNotIncluded as exc:
            context["upgrade"] = exc.message
            return await page(request, "live.html", actor, db_session, kernel, "sites", **context)
        feed = await live_feed(db_session, site.id, query)
        filters = filters_of(query)
        return await page(
            request,
            "live.html",
            actor,
            db_session,
            kernel,
            "sites",
            **context,
            feed=feed,
            now=utcnow(),
            ago=ago,
            selected=query.event_name or "all",
            visitor=query.visitor or "",
            range=query.range,
            ranges=RANGE_LABELS,
            pills=[(name, pill_href(site.id, filters, name)) for name in ("all", *feed.event_types)],
            poll_url=poll_url(site.id, query, feed),
            poll_trigger=POLL,
            live_js=static_url("live.js"),
        )

    @get("/rows", name="dashboard:live-rows")
    async def rows(
        self,
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        cursor: Annotated[str | None, Parameter(required=False)] = None,
        event_type: Annotated[str | None, QueryParameter(name="type", required=False)] = None,
        visitor: Annotated[str | None, Parameter(required=False)] = None,
        range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
    ) -> Template:
        """A poll (htmx): the events since ``cursor``, the stats bar, and the poller with the new cursor."""
        query = parse_query(event_type, visitor, range_, None, cursor, None)
        site = await get_site(db_session, actor, site_id)
        await require_feature_for(kernel, actor.organization, ANALYTICS_LIVE_EVENTS.key)
        feed = await live_feed(db_session, site.id, query)
        return Template(
            template_name="_live_poll.html",
            context={
                "feed": feed,
                "now": utcnow(),
                "ago": ago,
                "poll_url": poll_url(site.id, query, feed),
                "poll_trigger": "load delay:100ms" if feed.more else POLL,  # a burst: catch up at once
            },
        )
