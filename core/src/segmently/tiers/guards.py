"""Plan checks as request handlers use them: the organization's plan comes from ``get_plan``."""

from __future__ import annotations

from segmently.db.models import Organization
from segmently.hookspecs import OrgRef, PlanName
from segmently.kernel import Kernel
from segmently.tiers.limits import check_limit, require_feature
from segmently.tiers.plans import is_plan_name


def org_ref(org: Organization) -> OrgRef:
    """What hooks learn about an organization."""
    plan: PlanName = org.plan if is_plan_name(org.plan) else "free"
    return OrgRef(id=org.id, name=org.name, plan=plan)


async def plan_of(kernel: Kernel, org: Organization) -> PlanName:
    """The organization's plan now (asked anew on every request, so a change applies at once)."""
    return await kernel.plugins.plan(org_ref(org))


async def check_limit_for(kernel: Kernel, org: Organization, limit: str, used: int) -> None:
    """402/403 naming the limit, the usage and the plan that lifts it, if one more would exceed it."""
    check_limit(kernel.plans, await plan_of(kernel, org), limit, used)  # type: ignore[arg-type]


async def require_feature_for(kernel: Kernel, org: Organization, feature: str) -> None:
    """402 naming the plan that includes ``feature`` unless the organization's plan does."""
    require_feature(kernel.plans, await plan_of(kernel, org), feature)
