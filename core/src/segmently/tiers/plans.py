"""The plans table: every plan's limits and feature gates, in one place.

The defaults are the spec's "Subscription Tiers & Limits" section (where other
sections contradict it, that section wins). The kernel's features are declared
here; plugins declare theirs through ``register_features()``. The self-hoster may
override limits, move features to other plans and pick the plan of new
organizations in a TOML file (``SEGMENTLY_PLANS_FILE``)::

    default_plan = "free"

    [plans.business]
    sites = 3
    experiments = 10
    members = "unlimited"      # or -1

    [features]
    "heatmaps.moves" = "professional"

A plan includes a feature when it ranks (:data:`~segmently.hookspecs.PLAN_ORDER`)
at or above the feature's minimum plan. Everything here is pure: no database,
no HTTP.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeGuard

import msgspec

from segmently.hookspecs import PLAN_ORDER, Feature, PlanName

log = logging.getLogger(__name__)

LimitName = Literal["sites", "experiments", "members", "monthly_visitors", "retention_days"]
"""Names of the limits a plan sets."""

CountedLimit = Literal["sites", "experiments", "members", "monthly_visitors"]
"""Limits that cap a count (every limit but ``retention_days``)."""

LIMIT_NAMES: Final[tuple[LimitName, ...]] = (
    "sites",
    "experiments",
    "members",
    "monthly_visitors",
    "retention_days",
)
COUNTED_LIMITS: Final[tuple[CountedLimit, ...]] = ("sites", "experiments", "members", "monthly_visitors")

UNLIMITED: Final = "unlimited"
"""How the plans file spells "no limit" (``-1`` means the same)."""


def is_plan_name(value: object) -> TypeGuard[PlanName]:
    """Tell whether ``value`` is one of the plan names.

    Args:
        value: Anything, e.g. a plan read from the database or a file.

    Returns:
        True for ``free``, ``professional``, ``business`` and ``enterprise``.
    """
    return isinstance(value, str) and value in PLAN_ORDER


def plan_rank(name: PlanName) -> int:
    """Position of a plan in :data:`~segmently.hookspecs.PLAN_ORDER` (free is 0).

    Args:
        name: A plan name.

    Returns:
        The plan's rank; a higher rank is a more expensive plan.

    Raises:
        KeyError: ``name`` is not a plan.
    """
    if not is_plan_name(name):
        raise KeyError(f"unknown plan {name!r}")
    return PLAN_ORDER.index(name)


def plan_title(name: PlanName) -> str:
    """Human name of a plan, as messages and the dashboard show it.

    Args:
        name: A plan name (``professional``).

    Returns:
        The capitalized name (``Professional``).
    """
    return name.capitalize()


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """What a plan allows.

    Attributes:
        sites: Sites (the spec's "projects"); None is unlimited.
        experiments: Experiments; None is unlimited.
        members: Team members besides the owner; None is unlimited.
        monthly_visitors: Unique visitors per calendar month per organization;
            None is unlimited.
        retention_days: Days event data is kept; always a number.
    """

    sites: int | None
    experiments: int | None
    members: int | None
    monthly_visitors: int | None
    retention_days: int

    def __post_init__(self) -> None:
        """Refuse negative limits and a retention shorter than one day."""
        for name in COUNTED_LIMITS:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.retention_days < 1:
            raise ValueError(f"retention_days must be at least 1, got {self.retention_days}")

    def get(self, name: LimitName) -> int | None:
        """One limit by name.

        Args:
            name: One of :data:`LIMIT_NAMES`.

        Returns:
            The limit; None is unlimited.

        Raises:
            KeyError: ``name`` is not a limit.
        """
        if name not in LIMIT_NAMES:
            raise KeyError(f"unknown limit {name!r}")
        value: int | None = getattr(self, name)
        return value

    def allows(self, name: LimitName, needed: int) -> bool:
        """Tell whether the limit allows ``needed`` (objects, visitors or days).

        Args:
            name: One of :data:`LIMIT_NAMES`.
            needed: The count that must fit.

        Returns:
            True when the limit is unlimited or at least ``needed``.
        """
        allowed = self.get(name)
        return allowed is None or needed <= allowed


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """One plan of the plans table.

    Attributes:
        name: The plan's name.
        limits: What it allows.
        features: Keys of every feature it includes.
    """

    name: PlanName
    limits: Limits
    features: frozenset[str]

    @property
    def title(self) -> str:
        """Human name (``Professional``)."""
        return plan_title(self.name)

    @property
    def rank(self) -> int:
        """Position in :data:`~segmently.hookspecs.PLAN_ORDER` (free is 0)."""
        return plan_rank(self.name)


DEFAULT_LIMITS: Final[Mapping[PlanName, Limits]] = {
    "free": Limits(sites=1, experiments=0, members=0, monthly_visitors=5_000, retention_days=3),
    "professional": Limits(sites=1, experiments=1, members=1, monthly_visitors=None, retention_days=7),
    "business": Limits(sites=1, experiments=2, members=2, monthly_visitors=None, retention_days=30),
    "enterprise": Limits(
        sites=None, experiments=None, members=None, monthly_visitors=None, retention_days=365
    ),
}
"""The spec's "Subscription Tiers & Limits"; the plans file may override any of them."""

# ------------------------------------------------------- kernel features ---

EXPERIMENTS_AB: Final = Feature(key="experiments.ab", name="A/B tests", min_plan="professional")
EXPERIMENTS_FUNNELS: Final = Feature(key="experiments.funnels", name="Funnel goals", min_plan="professional")
EXPERIMENTS_BEHAVIORAL_TARGETING: Final = Feature(
    key="experiments.behavioral_targeting", name="Behavioral targeting", min_plan="professional"
)
EXPERIMENTS_ATTRIBUTE_TARGETING: Final = Feature(
    key="experiments.attribute_targeting", name="Attribute targeting", min_plan="professional"
)
EXPERIMENTS_MVT: Final = Feature(key="experiments.mvt", name="Multivariate tests", min_plan="business")
EXPERIMENTS_SCHEDULING: Final = Feature(
    key="experiments.scheduling", name="Experiment scheduling", min_plan="business"
)
FLAGS: Final = Feature(key="flags", name="Feature flags", min_plan="professional")
ANALYTICS_WINNER_ALERTS: Final = Feature(
    key="analytics.winner_alerts", name="Winner alerts", min_plan="professional"
)
ANALYTICS_LIVE_EVENTS: Final = Feature(
    key="analytics.live_events", name="Live events", min_plan="professional"
)
API_MANAGEMENT: Final = Feature(key="api.management", name="Management API", min_plan="enterprise")
ORGS_MULTIPLE: Final = Feature(key="orgs.multiple", name="Multiple organizations", min_plan="enterprise")
BRANDING_REMOVE_BADGE: Final = Feature(
    key="branding.remove_badge", name="Removing the Segmently badge", min_plan="professional"
)

KERNEL_FEATURES: Final[tuple[Feature, ...]] = (
    EXPERIMENTS_AB,
    EXPERIMENTS_FUNNELS,
    EXPERIMENTS_BEHAVIORAL_TARGETING,
    EXPERIMENTS_ATTRIBUTE_TARGETING,
    EXPERIMENTS_MVT,
    EXPERIMENTS_SCHEDULING,
    FLAGS,
    ANALYTICS_WINNER_ALERTS,
    ANALYTICS_LIVE_EVENTS,
    API_MANAGEMENT,
    ORGS_MULTIPLE,
    BRANDING_REMOVE_BADGE,
)
"""The features the kernel itself gates (plugins declare theirs with ``register_features``)."""


# ----------------------------------------------------------- the table ---


class PlansTable:
    """Every plan's limits and features: the one answer to "may this plan do that?".

    Build it with :func:`load_plans`; it never changes afterwards.
    """

    __slots__ = ("_default_plan", "_features", "_plans")

    def __init__(
        self,
        limits: Mapping[PlanName, Limits],
        features: Iterable[Feature],
        default_plan: PlanName = "free",
    ) -> None:
        """Build the table.

        Args:
            limits: Limits of every plan in :data:`~segmently.hookspecs.PLAN_ORDER`.
            features: Every known feature (kernel and plugins), each key once.
            default_plan: The plan new organizations start on.

        Raises:
            ValueError: A plan's limits are missing, a feature key appears twice,
                or a plan name is unknown.
        """
        missing = [name for name in PLAN_ORDER if name not in limits]
        if missing:
            raise ValueError(f"plans table lacks limits for {', '.join(missing)}")
        unknown = [name for name in limits if not is_plan_name(name)]
        if unknown:
            raise ValueError(f"unknown plan(s) {', '.join(map(repr, unknown))}")
        if not is_plan_name(default_plan):
            raise ValueError(f"unknown default plan {default_plan!r}")
        table: dict[str, Feature] = {}
        for feature in features:
            if feature.key in table:
                raise ValueError(f"feature key {feature.key!r} is declared twice")
            if not is_plan_name(feature.min_plan):
                raise ValueError(f"feature {feature.key!r}: unknown min_plan {feature.min_plan!r}")
            table[feature.key] = feature
        self._features = table
        self._plans: dict[PlanName, Plan] = {
            name: Plan(
                name=name,
                limits=limits[name],
                features=frozenset(
                    key for key, f in table.items() if plan_rank(name) >= plan_rank(f.min_plan)
                ),
            )
            for name in PLAN_ORDER
        }
        self._default_plan: PlanName = default_plan

    def __repr__(self) -> str:
        return f"PlansTable(default_plan={self._default_plan!r}, features={len(self._features)})"

    @property
    def default_plan(self) -> PlanName:
        """The plan new organizations start on."""
        return self._default_plan

    def plan(self, name: PlanName) -> Plan:
        """One plan.

        Args:
            name: A plan name.

        Returns:
            Its limits and features.

        Raises:
            KeyError: ``name`` is not a plan.
        """
        try:
            return self._plans[name]
        except KeyError:
            raise KeyError(f"unknown plan {name!r}") from None

    def plans(self) -> list[Plan]:
        """Every plan, cheapest first."""
        return [self._plans[name] for name in PLAN_ORDER]

    def features(self) -> dict[str, Feature]:
        """Every known feature by key, with its minimum plan after the plans file.

        Kernel features come first, then the plugins' in the order they were given.
        """
        return dict(self._features)

    def feature(self, key: str) -> Feature:
        """One feature.

        Args:
            key: A feature key (``experiments.mvt``).

        Returns:
            The feature, with its minimum plan after the plans file.

        Raises:
            KeyError: No kernel feature or enabled plugin declares ``key``.
        """
        try:
            return self._features[key]
        except KeyError:
            raise KeyError(f"unknown feature {key!r}") from None

    def includes(self, plan_name: PlanName, feature_key: str) -> bool:
        """Tell whether a plan includes a feature.

        Args:
            plan_name: A plan name.
            feature_key: A feature key.

        Returns:
            True when the plan ranks at or above the feature's minimum plan.

        Raises:
            KeyError: Unknown plan or feature key (a misspelled key fails loudly).
        """
        self.feature(feature_key)
        return feature_key in self.plan(plan_name).features

    def min_plan(self, feature_key: str) -> PlanName | None:
        """The cheapest plan that includes a feature.

        Args:
            feature_key: A feature key.

        Returns:
            The feature's minimum plan, or None for an unknown key.
        """
        feature = self._features.get(feature_key)
        return None if feature is None else feature.min_plan

    def next_plan_with(self, feature_key: str, *, above: PlanName | None = None) -> PlanName | None:
        """The cheapest plan that includes a feature, optionally ranked above a given plan.

        Args:
            feature_key: A feature key.
            above: Only consider plans ranked strictly above this one (the
                organization's current plan, for an upgrade prompt).

        Returns:
            A plan name, or None when the key is unknown or no such plan exists.
        """
        lowest = self.min_plan(feature_key)
        if lowest is None:
            return None
        start = max(plan_rank(lowest), -1 if above is None else plan_rank(above) + 1)
        return PLAN_ORDER[start] if start < len(PLAN_ORDER) else None

    def next_plan_lifting(
        self, limit_name: LimitName, needed: int, *, above: PlanName | None = None
    ) -> PlanName | None:
        """The cheapest plan whose limit allows ``needed``.

        Args:
            limit_name: One of :data:`LIMIT_NAMES`.
            needed: The count (or days) that must fit, e.g. sites in use plus one.
            above: Only consider plans ranked strictly above this one (the
                organization's current plan, for an upgrade prompt).

        Returns:
            A plan name, or None when no plan (above ``above``) allows ``needed``.

        Raises:
            KeyError: ``limit_name`` is not a limit.
        """
        if limit_name not in LIMIT_NAMES:
            raise KeyError(f"unknown limit {limit_name!r}")
        start = 0 if above is None else plan_rank(above) + 1
        for name in PLAN_ORDER[start:]:
            if self._plans[name].limits.allows(limit_name, needed):
                return name
        return None


# ------------------------------------------------------------ the file ---


class PlansFileError(ValueError):
    """The self-hoster's plans file cannot be read or says something invalid.

    Attributes:
        path: The plans file.
        key: The offending key in TOML dotted form (``plans.business.sites``),
            or None when the file as a whole is unreadable.
        problem: What is wrong with it.
    """

    def __init__(self, path: Path, key: str | None, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key is not None else str(path)
        super().__init__(f"plans file {where}: {problem}")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOP_LEVEL = ("default_plan", "plans", "features")
_PLAN_CHOICES = ", ".join(PLAN_ORDER)


def _key(*parts: str) -> str:
    """A TOML dotted key, quoting the parts that need it (``features."heatmaps.moves"``)."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else '"' + p.replace('"', '\\"') + '"' for p in parts)


class _Overrides(msgspec.Struct, kw_only=True):
    limits: dict[PlanName, dict[LimitName, int | None]]
    features: dict[str, PlanName]
    default_plan: PlanName | None


def _plan_value(path: Path, key: str, value: object) -> PlanName:
    if not is_plan_name(value):
        raise PlansFileError(path, key, f"unknown plan {value!r}; expected one of {_PLAN_CHOICES}")
    return value


def _limit_value(path: Path, key: str, name: LimitName, value: object) -> int | None:
    if name == "retention_days":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PlansFileError(
                path, key, f"must be a whole number of days, at least 1 (never unlimited), got {value!r}"
            )
        return value
    if isinstance(value, str) and value.strip().lower() == UNLIMITED:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlansFileError(path, key, f'must be a whole number, -1 or "{UNLIMITED}", got {value!r}')
    if value == -1:
        return None
    if value < 0:
        raise PlansFileError(
            path, key, f'must not be negative (use -1 or "{UNLIMITED}" for no limit), got {value}'
        )
    return value


def _table(path: Path, key: str, value: object, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlansFileError(path, key, f"must be a table, like {example}, got {value!r}")
    return value


def _read_overrides(path: Path) -> _Overrides:
    try:
        with path.open("rb") as fp:
            data = tomllib.load(fp)
    except OSError as exc:
        raise PlansFileError(path, None, f"cannot be read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise PlansFileError(path, None, f"is not UTF-8 text ({exc.reason})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlansFileError(path, None, f"is not valid TOML: {exc}") from exc

    for key in data:
        if key not in _TOP_LEVEL:
            raise PlansFileError(
                path, _key(key), "unknown setting; expected default_plan, [plans.<plan>] or [features]"
            )

    default_plan = None
    if "default_plan" in data:
        default_plan = _plan_value(path, "default_plan", data["default_plan"])

    limits: dict[PlanName, dict[LimitName, int | None]] = {}
    plans = _table(path, "plans", data.get("plans", {}), "[plans.business]")
    for plan_key, plan_table in plans.items():
        key = _key("plans", plan_key)
        plan_name = _plan_value(path, key, plan_key)
        entries = _table(path, key, plan_table, f"[{key}]")
        parsed: dict[LimitName, int | None] = {}
        for limit_key, value in entries.items():
            lkey = _key("plans", plan_key, limit_key)
            limit_name = next((n for n in LIMIT_NAMES if n == limit_key), None)
            if limit_name is None:
                raise PlansFileError(path, lkey, f"unknown limit; expected one of {', '.join(LIMIT_NAMES)}")
            parsed[limit_name] = _limit_value(path, lkey, limit_name, value)
        limits[plan_name] = parsed

    features: dict[str, PlanName] = {}
    moved = _table(path, "features", data.get("features", {}), '[features] "heatmaps.moves" = "business"')
    for feature_key, value in moved.items():
        features[feature_key] = _plan_value(path, _key("features", feature_key), value)

    return _Overrides(limits=limits, features=features, default_plan=default_plan)


def load_plans(plugin_features: Sequence[Feature], plans_file: Path | None = None) -> PlansTable:
    """Build the plans table: defaults, kernel and plugin features, then the plans file.

    Args:
        plugin_features: Features of the enabled plugins (``PluginHost.features()``).
        plans_file: The self-hoster's TOML overrides (``SEGMENTLY_PLANS_FILE``), if any.
            A feature it names that no kernel feature or enabled plugin declares is
            ignored with a warning (its plugin may be disabled on this server).

    Returns:
        The plans table.

    Raises:
        PlansFileError: The file is unreadable, not TOML, or names an unknown
            setting, plan or limit, or an invalid value; the message names the
            file and the key.
        ValueError: Two features declare the same key.
    """
    features: dict[str, Feature] = {}
    for feature in (*KERNEL_FEATURES, *plugin_features):
        if feature.key in features:
            raise ValueError(f"feature key {feature.key!r} is declared twice")
        features[feature.key] = feature
    limits: dict[PlanName, Limits] = dict(DEFAULT_LIMITS)
    if plans_file is None:
        return PlansTable(limits, features.values())

    overrides = _read_overrides(plans_file)
    for plan_name, changed in overrides.limits.items():
        limits[plan_name] = msgspec.structs.replace(limits[plan_name], **changed)
    for key, min_plan in overrides.features.items():
        if key not in features:
            log.warning(
                "plans file %s: %s: no kernel feature or enabled plugin declares it; ignored",
                plans_file,
                _key("features", key),
            )
            continue
        features[key] = msgspec.structs.replace(features[key], min_plan=min_plan)
    return PlansTable(limits, features.values(), overrides.default_plan or "free")
