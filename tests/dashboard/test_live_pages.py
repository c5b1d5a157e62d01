"""The Live events page: stats bar, pills, visitor search, date range, polling with the cursor, plan gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from html import unescape
from typing import Any

import httpx
import pytest

from segmently.domain.events import live
from tests.dashboard.support import text
from tests.dashboard.test_site_detail_page import Owner, owner

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show events as soon as they are stored (the feed's settle margin is tested in core)."""
    monkeypatch.setattr(live, "SETTLE_MARGIN", dt.timedelta(0))


async def send(api: httpx.AsyncClient, site: dict[str, Any], *events: dict[str, Any]) -> None:
    r = await api.post(
        "/api/v1/events/batch", json={"events": list(events)}, headers={"X-API-Key": site["api_key"]}
    )
    assert r.status_code == 202, r.text
    await asyncio.sleep(0.003)  # a later millisecond: with no margin the horizon is "now"


def visitors(html: str) -> list[str]:
    """The visitor ids of the table's rows, top to bottom."""
    return [unescape(v) for v in re.findall(r'<span class="visitor-id" title="([^"]+)"', html)]


def stat(html: str, name: str) -> int:
    match = re.search(rf'<dd id="stat-{name}">(\d+)</dd>', html)
    assert match, html
    return int(match.group(1))


def poll_url(html: str) -> str:
    match = re.search(r'<div id="live-poller" hx-get="([^"]+)"', html)
    assert match, html
    return unescape(match.group(1))


async def seeded(client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str) -> Owner:
    o = await owner(client, api, database_url, "lena", plan="professional")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
    await send(
        api,
        o.site,
        {"event_name": "page_view", "visitor_id": "visitor_alpha1", "timestamp": old},
        {"event_name": "conversion", "visitor_id": "visitor_beta22"},
    )
    await send(api, o.site, {"event_name": "signup", "visitor_id": "visitor_gamma3"})
    return o


async def test_the_page_shows_stats_pills_and_newest_events_first(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await seeded(client, api, database_url)
    r = await client.get(f"{o.page}/live")
    assert r.status_code == 200, r.text
    assert visitors(r.text) == ["visitor_gamma3", "visitor_beta22", "visitor_alpha1"]
    assert (stat(r.text, "events"), stat(r.text, "visitors"), stat(r.text, "conversions")) == (3, 3, 1)
    pills = re.findall(r'<a class="pill" href="[^"]*"(?: aria-current="true")?>([^<]+)</a>', r.text)
    assert pills == ["All", "page_view", "conversion", "assignment", "time_on_page", "signup"]
    assert 'aria-current="true">All</a>' in r.text
    assert "Pause" in r.text and 'hx-trigger="every 3s, live-resume"' in r.text


async def test_type_visitor_and_range_filter_the_table_and_the_stats(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await seeded(client, api, database_url)
    by_type = await client.get(f"{o.page}/live", params={"type": "conversion"})
    assert visitors(by_type.text) == ["visitor_beta22"]
    assert (stat(by_type.text, "events"), stat(by_type.text, "conversions")) == (1, 1)
    assert 'aria-current="true">conversion</a>' in by_type.text

    by_visitor = await client.get(f"{o.page}/live", params={"visitor": "ALPHA"})
    assert visitors(by_visitor.text) == ["visitor_alpha1"]
    assert 'value="ALPHA"' in by_visitor.text

    last_hour = await client.get(f"{o.page}/live", params={"range": "1h"})
    assert visitors(last_hour.text) == ["visitor_gamma3", "visitor_beta22"]  # alpha happened 2 days ago
    assert '<option value="1h" selected>' in last_hour.text

    bad = await client.get(f"{o.page}/live", params={"range": "year"})
    assert bad.status_code == 400
    assert "range: must be one of all, today, 1h, 24h, 7d" in text(bad.text)


async def test_a_poll_with_the_cursor_brings_only_the_new_events(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await seeded(client, api, database_url)
    first = await client.get(f"{o.page}/live", params={"type": "page_view"})
    url = poll_url(first.text)
    assert "type=page_view" in url and "cursor=" in url

    await send(
        api,
        o.site,
        {"event_name": "page_view", "visitor_id": "visitor_new001"},
        {"event_name": "conversion", "visitor_id": "visitor_new002"},  # not the chosen type
    )
    poll = await client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 200, poll.text
    assert visitors(poll.text) == ["visitor_new001"]
    assert 'hx-swap-oob="afterbegin:#live-rows"' in poll.text
    assert stat(poll.text, "events") == 2  # the stats bar is swapped too

    again = await client.get(poll_url(poll.text), headers={"HX-Request": "true"})
    assert visitors(again.text) == []
    assert "afterbegin:#live-rows" not in again.text


async def test_a_free_organization_sees_the_upgrade_prompt_and_polls_are_refused(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "fred", plan="free")
    r = await client.get(f"{o.page}/live")
    assert r.status_code == 200
    assert "Live events need the Professional plan; you are on Free." in text(r.text)
    assert "live-poller" not in r.text and "live-rows" not in r.text
    poll = await client.get(f"{o.page}/live/rows")
    assert poll.status_code == 402


async def test_another_organizations_site_is_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    other = await owner(client, api, database_url, "otto")
    await owner(client, api, database_url, "ivy")  # the client is now Ivy
    assert (await client.get(f"{other.page}/live")).status_code == 404
    assert (await client.get(f"{other.page}/live/rows")).status_code == 404
