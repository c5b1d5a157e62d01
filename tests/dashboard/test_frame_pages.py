"""The frame every signed-in page shares: bell, organization switcher, navigation; page weight; access."""

from __future__ import annotations

import gzip
import re

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import insert

from segmently.dashboard.wizard_tabs import TABS
from segmently.db.models import Alert
from segmently.http.access import access_of
from tests.conftest import Inbox
from tests.core.accounts.test_auth import bearer
from tests.core.accounts.test_team import db_update, set_plan, token_from
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION, assert_labelled, post_form, sign_up, text
from tests.dashboard.test_site_detail_page import owner

pytestmark = pytest.mark.usefixtures("backend")
PAGES = ("/sites", "/alerts", "/settings", "/api-keys", "/analytics")


async def org_id(client: httpx.AsyncClient) -> str:
    return (await client.get("/api/v1/me")).json()["organization"]["id"]  # type: ignore[no-any-return]


async def add_alert(database_url: str, organization_id: str, alert_id: str, message: str) -> None:
    await db_update(
        database_url,
        insert(Alert).values(
            id=alert_id,
            organization_id=organization_id,
            alert_type="winner_detected",
            message=message,
            data={},
        ),
    )


def badge(html: str) -> str:
    match = re.search(r'<span id="alert-badge"[^>]*>(\d+)', html)
    assert match, html
    return match.group(1)


async def test_bell_counts_unread_alerts_and_marking_read_lowers_it(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await sign_up(client, "ann")
    org = await org_id(client)
    await add_alert(database_url, org, "alert-one", "Headline test: B wins")
    await add_alert(database_url, org, "alert-two", "Pricing test ran out of time")
    page = await client.get("/sites")
    assert badge(page.text) == "2"

    panel = await client.get("/alerts/panel", headers={"HX-Request": "true"})
    assert "Headline test: B wins" in panel.text
    assert "Mark all read" in panel.text

    token = client.cookies["segmently_csrf"]
    r = await client.post("/alerts/alert-one/read", headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert r.status_code == 200
    assert 'hx-swap-oob="true"' in r.text  # the badge comes along, out of band
    assert badge(r.text) == "1"
    assert badge((await client.get("/sites")).text) == "1"

    r = await post_form(client, "/alerts/read-all", {})  # without htmx: back to the Alerts page
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts"
    after = await client.get("/alerts")
    assert re.search(r'<span id="alert-badge"[^>]*hidden', after.text)
    assert "Unread" not in text(after.text)


async def test_another_organizations_alert_cannot_be_read_or_marked(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await sign_up(client, "bob")
    await add_alert(database_url, await org_id(client), "bob-alert", "Bob's secret winner")
    client.cookies.clear()
    await sign_up(client, "cat")
    assert "Bob's secret winner" not in (await client.get("/alerts")).text
    assert "Bob's secret winner" not in (await client.get("/alerts/panel")).text
    r = await post_form(client, "/alerts/bob-alert/read", {})
    assert r.status_code == 404


async def test_organization_switcher_moves_between_the_users_organizations(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    owner = (
        await client.post(
            "/api/v1/auth/signup",
            json={"email": "own@example.com", "password": "x" * 12, "name": "Own", "organization": "Agency"},
        )
    ).json()
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    await client.post(
        "/api/v1/organization/invitations", json={"email": "dan@example.com"}, headers=bearer(owner["token"])
    )
    await sign_up(client, "dan", organization="Dan's own")
    assert 'id="org-switcher"' not in (await client.get("/sites")).text  # one organization: no switcher

    r = await client.get(f"/invitations/{token_from(smtp[0], 'dan@example.com')}")
    assert r.headers["location"] == "/sites?notice=joined"
    page = await client.get(r.headers["location"])
    assert "You joined Agency." in text(page.text)
    assert 'id="org-switcher"' in page.text
    own = next(o for o in (await client.get("/api/v1/organizations")).json() if o["name"] == "Dan's own")

    r = await post_form(client, f"/organizations/{own['id']}/switch", {})
    assert r.status_code == 303
    assert (await client.get("/api/v1/me")).json()["organization"]["name"] == "Dan's own"
    r = await post_form(client, f"/organizations/{owner['organization']['id']}/switch", {})
    assert (await client.get("/api/v1/me")).json()["organization"]["name"] == "Agency"

    client.cookies.clear()
    await sign_up(client, "eve")
    r = await post_form(client, f"/organizations/{own['id']}/switch", {})
    assert r.status_code == 404


async def test_navigation_lists_kernel_pages_and_the_dummy_plugins_entry(client: httpx.AsyncClient) -> None:
    await sign_up(client, "fay")
    page = await client.get("/sites")
    nav = re.search(r'<nav class="sidenav" aria-label="Main">(.*?)</nav>', page.text, re.S)
    assert nav
    labels = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)', nav.group(1))
    assert labels == [
        ("/sites", "Sites"),
        ("/analytics", "Analytics"),
        ("/alerts", "Alerts"),
        ("/settings", "Settings"),
        ("/api-keys", "API keys"),
        ("/dashboard/dummy", "Dummy"),
    ]
    assert 'href="/sites" aria-current="page"' in nav.group(1)

    dummy = await client.get("/dashboard/dummy")  # the plugin's page, inside the frame
    assert dummy.status_code == 200, dummy.text
    assert '<p id="dummy-notes">Notes: 0</p>' in dummy.text
    assert 'href="/dashboard/dummy" aria-current="page"' in dummy.text
    assert "<title>Dummy · fay org · Segmently</title>" in dummy.text


async def test_every_page_labels_every_form_control(client: httpx.AsyncClient) -> None:
    pages = ["/login", "/signup", "/forgot-password", "/reset-password?token=t"]
    for url in pages:
        assert assert_labelled(url, (await client.get(url)).text) > 0, f"{url} has a form"
    await sign_up(client, "gus")
    checked = [assert_labelled(url, (await client.get(url)).text) for url in PAGES]
    assert sum(checked) > 0  # the signed-in pages hold forms too (new site, org switcher)


async def test_each_page_needs_at_most_100_kb_of_gzipped_js_and_css(client: httpx.AsyncClient) -> None:
    weights = {}
    for url in ["/login", "/signup", "/forgot-password", "-", *PAGES]:
        if url == "-":
            await sign_up(client, "hal")
            continue
        html = (await client.get(url)).text
        assets = re.findall(r'<script src="([^"]+)"', html) + re.findall(
            r'<link rel="stylesheet" href="([^"]+)"', html
        )
        assert any("htmx" in a for a in assets) and any(".css" in a for a in assets), url
        total = 0
        for asset in assets:
            r = await client.get(asset)
            assert r.status_code == 200, asset
            total += len(gzip.compress(r.content, 9))
        weights[url] = total
    assert all(w <= 100 * 1024 for w in weights.values()), weights


async def test_every_page_with_a_site_and_an_experiment_labels_its_controls_and_stays_light(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "ida")
    made = await api.post(f"/api/v1/projects/{o.site['id']}/experiments", json=hero(), headers=o.h)
    assert made.status_code == 201, made.text
    site, exp = o.site["id"], made.json()["id"]
    pages = [
        *PAGES,
        *(f"/settings/{tab}" for tab in ("profile", "security", "team", "notifications", "billing")),
        f"/sites/{site}",
        f"/sites/{site}/experiments/new",
        f"/sites/{site}/live",
        f"/sites/{site}/flags",
        *(f"/experiments/{exp}/edit/{tab}" for tab in TABS),
        f"/experiments/{exp}",
        f"/experiments/{exp}/editor?variant=variant_b",
    ]
    labelled: dict[str, int] = {}
    for url in pages:
        r = await client.get(url)
        assert r.status_code == 200, (url, r.status_code)
        labelled[url] = assert_labelled(url, r.text)
        assets = re.findall(r'<script src="([^"]+)"', r.text) + re.findall(
            r'<link rel="stylesheet" href="([^"]+)"', r.text
        )
        weight = sum([len(gzip.compress((await client.get(a)).content, 9)) for a in assets])
        assert weight <= 100 * 1024, (url, weight)
    # the check saw the forms: every tab of the wizard but the review, the editor, the settings
    forms = [u for u in pages if ("/edit/" in u and not u.endswith("/review")) or "editor" in u]
    forms += [u for u in pages if u.startswith("/settings/") and not u.endswith("/billing")]
    assert all(labelled[u] > 0 for u in forms), labelled


async def test_every_dashboard_page_sends_anonymous_visitors_to_login(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    checked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not handler.fn.__module__.startswith("segmently.dashboard") or access_of(handler) == "public":
                continue
            path = re.sub(r"{\w+}", "x", route.path_format)
            for method in handler.http_methods:
                r = await client.request(method, path)
                assert r.status_code == 303, f"{method} {path}: {r.status_code}"
                assert r.headers["location"].startswith("/login"), f"{method} {path}"
                checked += 1
    assert checked >= 12
    r = await client.get("/alerts/panel", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"] == "/login"  # htmx moves the whole page, not the fragment
    assert SESSION not in client.cookies
