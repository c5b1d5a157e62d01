"""The typed caller awaits async hooks, subsets per organization and isolates failures."""

from __future__ import annotations

import datetime as dt

import pytest
from litestar.connection import ASGIConnection
from segmently_dummy import plugin as dummy

from segmently.hookspecs import DomainEvent, IngestedEvent, OrgRef, SiteRef, hookimpl
from segmently.plugins import HookFailure, PluginHost

NOW = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
ORG_ON = OrgRef(id="org-on", name="On", plan="business")
ORG_OFF = OrgRef(id="org-off", name="Off", plan="free")


class OnlyForOrgOn:
    """An entitlement interface that switches the dummy plugin on for one organization only."""

    async def check_route(
        self, connection: ASGIConnection, plugin: str, feature: str | None, access: str
    ) -> None:  # type: ignore[type-arg]
        return None

    async def plugins_switched_on(
        self, organization_id: str | None, site_id: str | None = None
    ) -> frozenset[str]:
        return frozenset({"dummy"}) if organization_id == ORG_ON.id else frozenset()


@pytest.fixture
def host() -> PluginHost:
    dummy.RECORDED.clear()
    dummy.PLAN_ANSWERS.clear()
    h = PluginHost.load()
    h.entitlements = OnlyForOrgOn()
    return h


def event(org: OrgRef, note: str = "") -> DomainEvent:
    return DomainEvent(
        id=f"ev-{org.id}", event="project.created", organization_id=org.id, timestamp=NOW, data={"note": note}
    )


async def test_async_domain_event_hook_is_awaited_for_switched_on_org_only(host: PluginHost) -> None:
    await host.domain_event(event(ORG_ON))
    await host.domain_event(event(ORG_OFF))
    delivered = [p.id for h, p in dummy.RECORDED if h == "on_domain_event"]
    assert delivered == ["ev-org-on"]


async def test_register_hooks_are_collected_per_organization(host: PluginHost) -> None:
    assert [n.label for n in await host.dashboard_nav(ORG_ON)] == ["Dummy"]
    assert await host.dashboard_nav(ORG_OFF) == []
    site_on = SiteRef(id="s1", organization_id=ORG_ON.id, name="Shop", url="https://shop.example.com")
    modules = await host.snippet_modules(site_on, frozenset({"dummy.pid"}))
    assert [(m.name, m.config) for m in modules] == [("dummy", {"site": "s1"})]


async def test_events_ingested_reaches_only_switched_on_sites(host: PluginHost) -> None:
    ev = IngestedEvent(event_id="e1", event_name="page_view", visitor_id="v", site_id="s", timestamp=NOW)
    await host.events_ingested(
        SiteRef(id="s", organization_id=ORG_OFF.id, name="x", url="https://x.example"), [ev]
    )
    await host.events_ingested(
        SiteRef(id="s", organization_id=ORG_ON.id, name="x", url="https://x.example"), [ev]
    )
    assert [p for h, p in dummy.RECORDED if h == "on_events_ingested"] == [["e1"]]


async def test_get_plan_asks_every_enabled_plugin_first_answer_wins(host: PluginHost) -> None:
    assert await host.plan(ORG_OFF) == "free"  # the kernel default: the stored plan
    dummy.PLAN_ANSWERS[ORG_OFF.id] = "enterprise"
    # never subset by the plan it is computing: the dummy answers although it is off for this org
    assert await host.plan(ORG_OFF) == "enterprise"


async def test_purge_reaches_every_enabled_plugin(host: PluginHost) -> None:
    await host.purge(ORG_OFF, NOW)
    assert ("on_purge", {"org": ORG_OFF.id, "before": NOW.isoformat()}) in dummy.RECORDED


async def test_failing_hook_raises_hook_failure_naming_the_plugin(
    host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUMMY_PLUGIN_FAIL", "boom")
    with pytest.raises(HookFailure, match=r"on_domain_event failed in dummy \(RuntimeError"):
        await host.domain_event(event(ORG_ON, note="boom"))


class LegacyPurge:
    """A plugin whose ``on_purge`` predates visitor deletion: it declares only ``org`` and ``before``."""

    calls: list[tuple[str, dt.datetime]] = []

    @staticmethod
    @hookimpl
    def on_purge(org: OrgRef, before: dt.datetime) -> None:
        LegacyPurge.calls.append((org.id, before))


async def test_visitor_purge_never_claims_a_plugin_that_cannot_target_a_visitor(host: PluginHost) -> None:
    LegacyPurge.calls.clear()
    host.pm.register(LegacyPurge, name="legacy")
    site = SiteRef(id="s-legacy", organization_id=ORG_OFF.id, name="x", url="https://x.example")
    dummy.VISITS[f"{site.id}/v1"] = ["e1"]
    out = await host.purge_visitor(ORG_OFF, site, "v1")  # switched off for ORG_OFF, asked regardless
    assert out.purged == ["dummy"] and f"{site.id}/v1" not in dummy.VISITS
    assert list(out.not_purged) == ["legacy"] and LegacyPurge.calls == []
    await host.purge(ORG_OFF, NOW)  # the retention purge still reaches it, with what it declares
    assert LegacyPurge.calls == [(ORG_OFF.id, NOW)]


async def test_export_visitor_asks_every_enabled_plugin_and_names_failures(
    host: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = SiteRef(id="s-export", organization_id=ORG_OFF.id, name="x", url="https://x.example")
    dummy.VISITS[f"{site.id}/v1"] = ["e1", "e2"]
    out = await host.export_visitor(site, "v1")
    assert out.data == {"dummy": {"events_seen": ["e1", "e2"]}} and out.failed == {}
    assert (await host.export_visitor(site, "nobody")).data == {}  # None answers are left out
    monkeypatch.setenv("DUMMY_PLUGIN_FAIL", "v1")
    failed = await host.export_visitor(site, "v1")
    assert failed.data == {} and "RuntimeError" in failed.failed["dummy"]
