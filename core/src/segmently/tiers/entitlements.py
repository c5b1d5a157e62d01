"""The kernel's entitlement interface with plans: what the plugin guard and hook caller ask."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import PermissionDeniedException
from sqlalchemy import select

from segmently.db.models import Organization
from segmently.domain.accounts.auth import authenticate
from segmently.domain.sites.keys import key_from
from segmently.domain.sites.settings import site_plugins
from segmently.hookspecs import OrgRef, PlanName
from segmently.kernel import Kernel
from segmently.tiers.guards import org_ref
from segmently.tiers.limits import require_feature
from segmently.tiers.plans import is_plan_name


class PlanEntitlements:
    """A plugin is on for an organization when its plan includes one of the plugin's features.

    A plugin that declares no features is on for everyone. For a site, its own switches
    (site settings, all on by default) must also leave the plugin on.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def _features(self, plugin: str) -> list[str]:
        info = next((i for i in self.kernel.plugins.infos if i.name == plugin), None)
        return [f.key for f in info.features] if info else []

    async def _org_of(
        self, connection: ASGIConnection[Any, Any, Any, Any], access: str, plugin: str
    ) -> OrgRef:
        if access == "site":
            site = await self.kernel.site_keys.require(key_from(connection))
            async with self.kernel.db.sessions() as session:
                switches = await site_plugins(session, site.site_id)
            if not switches.get(plugin, True):
                raise PermissionDeniedException(f"The {plugin} feature pack is switched off for this site")
            plan = site.plan if is_plan_name(site.plan) else "free"
            return OrgRef(id=site.organization_id, name=site.organization_name, plan=plan)
        async with self.kernel.db.sessions() as session:
            actor = await authenticate(connection, session)
        return org_ref(actor.organization)

    async def check_route(
        self, connection: ASGIConnection[Any, Any, Any, Any], plugin: str, feature: str | None, access: str
    ) -> None:
        """401/403 for a caller that is not let in, 402 naming the plan that includes the feature."""
        org = await self._org_of(connection, access, plugin)
        wanted = [feature] if feature else self._features(plugin)
        if not wanted:
            return
        plan = await self.kernel.plugins.plan(org)
        if not any(self.kernel.plans.includes(plan, key) for key in wanted):
            require_feature(self.kernel.plans, plan, wanted[0])

    async def plugins_switched_on(
        self, organization_id: str | None, site_id: str | None = None
    ) -> frozenset[str]:
        """Enabled plugins the organization's plan includes (all of them for events of no organization)."""
        enabled = self.kernel.plugins.enabled
        if organization_id is None:
            return enabled
        async with self.kernel.db.sessions() as session:
            org = await session.scalar(select(Organization).where(Organization.id == organization_id))
            switches = await site_plugins(session, site_id) if site_id else {}
        if org is None:
            return frozenset()
        plan = await self.kernel.plugins.plan(org_ref(org))
        return frozenset(name for name in enabled if self._included(name, plan) and switches.get(name, True))

    def _included(self, plugin: str, plan: PlanName) -> bool:
        features = self._features(plugin)
        return not features or any(self.kernel.plans.includes(plan, k) for k in features)
