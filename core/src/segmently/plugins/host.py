"""The typed hook caller: the only code in Segmently that calls plugin hooks."""

from __future__ import annotations

import datetime as dt
import inspect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pluggy

from segmently import hookspecs
from segmently.hookspecs import (
    DomainEvent,
    EventType,
    Feature,
    IngestedEvent,
    JobSpec,
    NavItem,
    OrgRef,
    PlanName,
    SiteRef,
    SnippetModule,
)
from segmently.plugins.entitlements import AllowAll, Entitlements
from segmently.plugins.loader import KERNEL_PLUGIN, PluginInfo, load_plugins, new_plugin_manager

log = logging.getLogger(__name__)


class HookFailure(Exception):
    """A plugin's hook implementation raised; the other plugins were still called."""

    def __init__(self, hook: str, failures: list[tuple[str, BaseException]]) -> None:
        names = ", ".join(f"{plugin} ({type(exc).__name__}: {exc})" for plugin, exc in failures)
        super().__init__(f"{hook} failed in {names}")
        self.failures = failures


@dataclass(frozen=True, slots=True)
class VisitorPurge:
    """How the plugins took a visitor's deletion.

    Attributes:
        purged: Plugins whose ``on_purge`` deleted the visitor's data.
        not_purged: Plugins that did not, and why (they raised, or their ``on_purge``
            cannot target one visitor). Never reported as purged.
    """

    purged: list[str] = field(default_factory=list)
    not_purged: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VisitorExports:
    """What the plugins hold about a visitor.

    Attributes:
        data: Each answering plugin's data, as JSON builtins, by plugin name.
        failed: Plugins whose ``export_visitor`` failed, and why.
    """

    data: dict[str, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _why(exc: BaseException) -> str:
    """A failure as the caller sees it; the details go to the log."""
    return f"failed ({type(exc).__name__}); see the server log"


class PluginHost:
    """Loaded plugins and a typed, async-aware way to call their hooks.

    ``register_*`` hooks called at start-up (features, models, migrations, routes,
    template dirs, event types, jobs) must be plain functions; the per-request and
    notification hooks may be ``async def`` and are awaited.
    """

    def __init__(
        self,
        pm: pluggy.PluginManager,
        infos: Sequence[PluginInfo],
        entitlements: Entitlements | None = None,
    ) -> None:
        self.pm = pm
        self.infos = list(infos)
        self.enabled = frozenset(i.name for i in self.infos if i.enabled)
        self.entitlements: Entitlements = entitlements or AllowAll(self.enabled)
        features = self._collect_sync("register_features")
        for info in self.infos:
            info.features = list(features.get(info.name, []))

    @classmethod
    def load(cls, disabled: Iterable[str] = (), only: Iterable[str] | None = None) -> PluginHost:
        """Discover installed plugins through entry points and load the enabled ones."""
        pm = new_plugin_manager()
        return cls(pm, load_plugins(pm, disabled, only))

    # ------------------------------------------------------------ plumbing ---

    def _impls(self, hook: str, only: frozenset[str] | None) -> list[pluggy.HookImpl]:
        """Implementations in pluggy's call order, subset to ``only`` (the kernel always stays)."""
        impls = list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))
        if only is None:
            return impls
        return [i for i in impls if i.plugin_name == KERNEL_PLUGIN or i.plugin_name in only]

    def _collect_sync(self, hook: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for impl in self._impls(hook, None):
            result: Any = impl.function()
            if inspect.isawaitable(result):
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                raise TypeError(
                    f"plugin {impl.plugin_name}: {hook} is called at start-up and must not be async"
                )
            out.setdefault(impl.plugin_name, []).extend(result or [])
        return out

    @staticmethod
    def _call(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        """Pass an implementation only the arguments it declares, as pluggy does."""
        return impl.function(*(kwargs[name] for name in impl.argnames))

    async def _collect(self, hook: str, only: frozenset[str], **kwargs: Any) -> list[Any]:
        items: list[Any] = []
        for impl in self._impls(hook, only):
            result = self._call(impl, kwargs)
            if inspect.isawaitable(result):
                result = await result
            items.extend(result or [])
        return items

    async def _notify(self, hook: str, only: frozenset[str] | None, **kwargs: Any) -> None:
        failures: list[tuple[str, BaseException]] = []
        for impl in self._impls(hook, only):
            try:
                result = self._call(impl, kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                failures.append((impl.plugin_name, exc))
        if failures:
            raise HookFailure(hook, failures)

    async def _first(self, hook: str, only: frozenset[str] | None, **kwargs: Any) -> Any:
        for impl in self._impls(hook, only):
            result = self._call(impl, kwargs)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        return None

    async def switched_on(self, organization_id: str | None, site_id: str | None = None) -> frozenset[str]:
        """Plugins switched on for an organization (and site), per the entitlement interface."""
        return await self.entitlements.plugins_switched_on(organization_id, site_id)

    # ------------------------------------------------------------ start-up ---

    def features(self) -> list[Feature]:
        """Every enabled plugin's features."""
        return [f for info in self.infos for f in info.features]

    def models(self) -> list[type[Any]]:
        """Models the plugins declare (importing them attaches them to the shared metadata)."""
        return [m for ms in self._collect_sync("register_models").values() for m in ms]

    def migration_dirs(self) -> dict[str, list[Path]]:
        """Each enabled plugin's Alembic version directories, by plugin name."""
        return {
            name: [Path(p) for p in dirs] for name, dirs in self._collect_sync("register_migrations").items()
        }

    def routes(self) -> dict[str, list[Any]]:
        """Route handlers, controllers and routers, by plugin name."""
        return self._collect_sync("register_routes")

    def event_types(self) -> dict[str, list[EventType]]:
        """Event types the plugins ingest, by plugin name."""
        return self._collect_sync("register_event_types")

    def jobs(self) -> dict[str, list[JobSpec]]:
        """Scheduled jobs, by plugin name."""
        return self._collect_sync("register_jobs")

    def template_dirs(self) -> list[Path]:
        """Template directories of every enabled plugin."""
        return [Path(p) for ps in self._collect_sync("register_template_dirs").values() for p in ps]

    # ---------------------------------------------------- per organization ---

    async def dashboard_nav(self, org: OrgRef) -> list[NavItem]:
        """Navigation items of the plugins switched on for ``org``."""
        return await self._collect("register_dashboard_nav", await self.switched_on(org.id), org=org)

    async def snippet_modules(self, site: SiteRef, entitlements: frozenset[str]) -> list[SnippetModule]:
        """Snippet chunks of the plugins switched on for ``site``."""
        only = await self.switched_on(site.organization_id, site.id)
        return await self._collect("register_snippet_modules", only, site=site, entitlements=entitlements)

    async def events_ingested(self, site: SiteRef, events: Sequence[IngestedEvent]) -> None:
        """Tell the plugins switched on for ``site`` about committed events; failures are logged."""
        try:
            await self._notify(
                "on_events_ingested",
                await self.switched_on(site.organization_id, site.id),
                site=site,
                events=events,
            )
        except HookFailure as exc:
            log.error("%s", exc, extra={"site_id": site.id})

    async def domain_event(self, event: DomainEvent) -> None:
        """Deliver a domain event to the plugins switched on for its organization.

        Raises:
            HookFailure: Some plugin raised; the event must be delivered again.
        """
        await self._notify("on_domain_event", await self.switched_on(event.organization_id), event=event)

    async def purge(self, org: OrgRef, before: dt.datetime) -> None:
        """Ask every enabled plugin to delete the organization's data older than ``before``.

        Raises:
            HookFailure: Some plugin raised; the others were still asked.
        """
        await self._notify("on_purge", None, org=org, before=before, site_id=None, visitor_id=None)

    # --------------------------------------------------------- data rights ---

    async def purge_visitor(self, org: OrgRef, site: SiteRef, visitor_id: str) -> VisitorPurge:
        """Ask every enabled plugin to delete everything about one visitor of ``site``.

        Call it after the kernel's own deletion is committed. A plugin whose ``on_purge``
        does not declare ``visitor_id`` cannot tell this call from a retention purge, so
        it is not called and is reported as not purged; a failure is logged.
        """
        out = VisitorPurge()
        kwargs: dict[str, Any] = {"org": org, "before": None, "site_id": site.id, "visitor_id": visitor_id}
        for impl in self._impls("on_purge", None):
            if "visitor_id" not in impl.argnames:
                out.not_purged[impl.plugin_name] = "its on_purge cannot delete one visitor's data"
                continue
            try:
                result = self._call(impl, kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.exception("on_purge of plugin %s failed for a visitor", impl.plugin_name)
                out.not_purged[impl.plugin_name] = _why(exc)
                continue
            out.purged.append(impl.plugin_name)
        return out

    async def export_visitor(self, site: SiteRef, visitor_id: str) -> VisitorExports:
        """Every enabled plugin's data about one visitor of ``site``; failures are logged and named."""
        out = VisitorExports()
        for impl in self._impls("export_visitor", None):
            try:
                result = self._call(impl, {"site": site, "visitor_id": visitor_id})
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    out.data[impl.plugin_name] = msgspec.to_builtins(result)
            except Exception as exc:
                log.exception("export_visitor of plugin %s failed", impl.plugin_name)
                out.failed[impl.plugin_name] = _why(exc)
        return out

    async def plan(self, org: OrgRef) -> PlanName:
        """The organization's plan: the first answer of any enabled plugin, else the stored one."""
        answer = await self._first("get_plan", None, org=org)
        if answer not in hookspecs.PLAN_ORDER:
            log.error("get_plan answered %r for org %s; using its stored plan", answer, org.id)
            return org.plan
        plan: PlanName = answer
        return plan
