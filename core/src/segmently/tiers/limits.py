"""Entitlement checks against the plans table: limits, features and usage badges.

Limits are checked only when something is created: after a downgrade, objects
over the new limits stay and keep working, and only creating more is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from segmently.hookspecs import PlanName
from segmently.tiers.plans import COUNTED_LIMITS, CountedLimit, PlansTable, plan_title

PAYMENT_REQUIRED: Final = 402
FORBIDDEN: Final = 403

_NOUNS: Final[Mapping[CountedLimit, tuple[str, str]]] = {
    "sites": ("site", "sites"),
    "experiments": ("experiment", "experiments"),
    "members": ("team member", "team members"),
    "monthly_visitors": ("monthly visitor", "monthly visitors"),
}


def _counted(limit_name: str) -> CountedLimit:
    for name in COUNTED_LIMITS:
        if name == limit_name:
            return name
    raise ValueError(f"{limit_name!r} is not a counted limit; expected one of {', '.join(COUNTED_LIMITS)}")


def describe_limit(limit_name: CountedLimit, allowed: int | None) -> str:
    """A limit in words.

    Args:
        limit_name: One of the counted limits.
        allowed: The limit; None is unlimited.

    Returns:
        ``1 site``, ``5,000 monthly visitors`` or ``unlimited team members``.
    """
    singular, plural = _NOUNS[_counted(limit_name)]
    if allowed is None:
        return f"unlimited {plural}"
    return f"{allowed:,} {singular if allowed == 1 else plural}"


class LimitExceeded(Exception):
    """Creating one more would go over the plan's limit.

    Attributes:
        status_code: 402 when a higher plan lifts the limit, 403 when none does.
        limit: The limit's name (``sites``).
        used: How many the organization has now.
        allowed: What its plan allows.
        plan: The organization's plan.
        upgrade_to: The cheapest higher plan that lifts the limit, if any.
        message: What the dashboard and API show, e.g. "Your Professional plan
            allows 1 site (1/1 used). Upgrade to Enterprise for more."
    """

    def __init__(
        self,
        *,
        limit: CountedLimit,
        used: int,
        allowed: int,
        plan: PlanName,
        upgrade_to: PlanName | None,
    ) -> None:
        self.limit: CountedLimit = limit
        self.used = used
        self.allowed = allowed
        self.plan: PlanName = plan
        self.upgrade_to: PlanName | None = upgrade_to
        self.status_code = PAYMENT_REQUIRED if upgrade_to is not None else FORBIDDEN
        then = (
            f"Upgrade to {plan_title(upgrade_to)} for more."
            if upgrade_to is not None
            else "No plan on this server allows more."
        )
        self.message = (
            f"Your {plan_title(plan)} plan allows {describe_limit(limit, allowed)} "
            f"({used:,}/{allowed:,} used). {then}"
        )
        super().__init__(self.message)

    @property
    def detail(self) -> str:
        """The message, under the name the API's error body uses."""
        return self.message


class FeatureNotIncluded(Exception):
    """The organization's plan does not include a feature.

    Attributes:
        status_code: Always 402 (a higher plan includes every known feature).
        feature: The feature's key (``experiments.mvt``).
        feature_name: Its human name (``Multivariate tests``).
        plan: The organization's plan.
        upgrade_to: The cheapest plan that includes the feature.
        message: What the dashboard and API show, e.g. "Multivariate tests need
            the Business plan; you are on Professional."
    """

    def __init__(self, *, feature: str, feature_name: str, plan: PlanName, upgrade_to: PlanName) -> None:
        self.status_code = PAYMENT_REQUIRED
        self.feature = feature
        self.feature_name = feature_name
        self.plan: PlanName = plan
        self.upgrade_to: PlanName = upgrade_to
        last = feature_name.split()[-1] if feature_name.split() else ""
        verb = "need" if last.endswith("s") and not last.endswith("ss") else "needs"
        self.message = (
            f"{feature_name} {verb} the {plan_title(upgrade_to)} plan; you are on {plan_title(plan)}."
        )
        super().__init__(self.message)

    @property
    def detail(self) -> str:
        """The message, under the name the API's error body uses."""
        return self.message


def check_limit(
    table: PlansTable, plan_name: PlanName, limit_name: CountedLimit, used: int, *, adding: int = 1
) -> None:
    """Refuse to create more than the plan allows.

    Call it before creating a site, experiment or invitation (``used`` counts
    what exists, pending invitations included for members) or before tracking a
    new visitor this month. Objects already over the limit (after a downgrade)
    are never touched; only creating more is refused.

    Args:
        table: The plans table.
        plan_name: The organization's plan.
        limit_name: ``sites``, ``experiments``, ``members`` or ``monthly_visitors``.
        used: How many the organization has now.
        adding: How many are about to be created.

    Raises:
        LimitExceeded: ``used + adding`` is over the limit (402 when a higher plan
            lifts it, 403 when none does).
        ValueError: ``limit_name`` is not a counted limit, or a count is negative.
        KeyError: ``plan_name`` is not a plan.
    """
    limit = _counted(limit_name)
    if used < 0 or adding < 0:
        raise ValueError(f"counts must not be negative (used={used}, adding={adding})")
    allowed = table.plan(plan_name).limits.get(limit)
    if allowed is None or used + adding <= allowed:
        return
    raise LimitExceeded(
        limit=limit,
        used=used,
        allowed=allowed,
        plan=plan_name,
        upgrade_to=table.next_plan_lifting(limit, used + adding, above=plan_name),
    )


def require_feature(table: PlansTable, plan_name: PlanName, feature_key: str) -> None:
    """Refuse a feature the plan does not include.

    Args:
        table: The plans table.
        plan_name: The organization's plan.
        feature_key: The feature's key (``experiments.mvt``).

    Raises:
        FeatureNotIncluded: The plan ranks below the feature's minimum plan (402).
        KeyError: Unknown plan or feature key.
    """
    if table.includes(plan_name, feature_key):
        return
    feature = table.feature(feature_key)
    raise FeatureNotIncluded(
        feature=feature.key, feature_name=feature.name, plan=plan_name, upgrade_to=feature.min_plan
    )


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """One usage badge of the dashboard.

    Attributes:
        used: How many the organization has.
        allowed: What its plan allows; None is unlimited.
        label: ``1/1 sites``, ``3/∞ experiments``.
        at_limit: Creating one more would be refused (the "+ New …" button is
            disabled); also true when over the limit after a downgrade.
    """

    used: int
    allowed: int | None
    label: str
    at_limit: bool


def usage(table: PlansTable, plan_name: PlanName, counts: Mapping[str, int]) -> dict[str, Usage]:
    """Usage badges for the dashboard.

    Args:
        table: The plans table.
        plan_name: The organization's plan.
        counts: Current counts by counted limit name (``{"sites": 1, "experiments": 3}``).

    Returns:
        One :class:`Usage` per entry of ``counts``, in the same order.

    Raises:
        ValueError: A key is not a counted limit, or a count is negative.
        KeyError: ``plan_name`` is not a plan.
    """
    limits = table.plan(plan_name).limits
    out: dict[str, Usage] = {}
    for key, used in counts.items():
        limit = _counted(key)
        if used < 0:
            raise ValueError(f"{key}: count must not be negative, got {used}")
        allowed = limits.get(limit)
        shown = "∞" if allowed is None else f"{allowed:,}"
        out[key] = Usage(
            used=used,
            allowed=allowed,
            label=f"{used:,}/{shown} {_NOUNS[limit][1]}",
            at_limit=allowed is not None and used >= allowed,
        )
    return out
