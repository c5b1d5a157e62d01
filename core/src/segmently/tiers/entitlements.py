"""The kernel's entitlement interface with plans: what the plugin guard and hook caller ask."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy import select

from segmently.db.models import Organization
from segmently.domain.accounts.auth import authenticate
from segmently.domain.sites.keys import key_from
from segmently.hookspecs import OrgRef
from segmently.kernel import Kernel
from segmently.tiers.guards import org_ref
from segmently.tiers.limits import require_feature
from segmently.tiers.plans import is_plan_name


class PlanEntitlements:
    """A plugin is on for an organization when its plan includes one of the plugin's features.

    A plugin that declares no features is on for everyone. Per-site switches are the
    sites layer's addition.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def _features(self, plugin: str) -> list[str]:
        info = next((i for i in self.kernel.plugins.infos if i.name == plugin), None)
        return [f.key for f in info.features] if info else []

    async def _org_of(self, connection: ASGIConnection[Any, Any, Any, Any], access: str) -> OrgRef:
        if access == "site":
            site = await self.kernel.site_keys.require(key_from(connection))
            plan = site.plan if is_plan_name(site.plan) else "free"
            return OrgRef(id=site.organization_id, name=site.organization_name, plan=plan)
        async with self.kernel.db.sessions() as session:
            actor = await authenticate(connection, session)
        return org_ref(actor.organization)

    async def check_route(
        self, connection: ASGIConnection[Any, Any, Any, Any], plugin: str, feature: str | None, access: str
    ) -> None:
        """401/403 for a caller that is not let in, 402 naming the plan that includes the feature."""
        org = await self._org_of(connection, access)
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
        if org is None:
            return frozenset()
        plan = await self.kernel.plugins.plan(org_ref(org))
        return frozenset(
            name
            for name in enabled
            if not self._features(name)
            or any(self.kernel.plans.includes(plan, k) for k in self._features(name))
        )
