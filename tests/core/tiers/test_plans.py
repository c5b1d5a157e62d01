"""The plans table: spec defaults, plugin features, the self-hoster's file, limit and feature checks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from segmently.hookspecs import PLAN_ORDER, Feature, PlanName
from segmently.plugins import PluginHost
from segmently.tiers import (
    DEFAULT_LIMITS,
    EXPERIMENTS_MVT,
    KERNEL_FEATURES,
    FeatureNotIncluded,
    LimitExceeded,
    Limits,
    PlansFileError,
    PlansTable,
    Usage,
    check_limit,
    load_plans,
    require_feature,
    usage,
)

ROOT = Path(__file__).resolve().parents[3]

# The spec's "Subscription Tiers & Limits" (members besides the owner; None = unlimited).
SPEC_LIMITS: dict[str, tuple[int | None, int | None, int | None, int | None, int]] = {
    #              sites experiments members visitors retention
    "free": (1, 0, 0, 5_000, 3),
    "professional": (1, 1, 1, None, 7),
    "business": (1, 2, 2, None, 30),
    "enterprise": (None, None, None, None, 365),
}

KERNEL_MIN_PLANS = {
    "experiments.ab": "professional",
    "experiments.funnels": "professional",
    "experiments.behavioral_targeting": "professional",
    "experiments.attribute_targeting": "professional",
    "experiments.mvt": "business",
    "experiments.scheduling": "business",
    "flags": "professional",
    "analytics.winner_alerts": "professional",
    "analytics.live_events": "professional",
    "api.management": "enterprise",
    "orgs.multiple": "enterprise",
    "branding.remove_badge": "professional",
}


@pytest.fixture(scope="module")
def plugin_features() -> list[Feature]:
    return PluginHost.load().features()


@pytest.fixture(scope="module")
def table(plugin_features: list[Feature]) -> PlansTable:
    return load_plans(plugin_features)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plans.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------- defaults ---


@pytest.mark.parametrize("name", PLAN_ORDER)
def test_default_limits_match_the_spec(table: PlansTable, name: PlanName) -> None:
    sites, experiments, members, visitors, retention = SPEC_LIMITS[name]
    expected = Limits(
        sites=sites,
        experiments=experiments,
        members=members,
        monthly_visitors=visitors,
        retention_days=retention,
    )
    assert table.plan(name).limits == expected
    assert DEFAULT_LIMITS[name] == expected
    assert table.plan(name).name == name


def test_new_organizations_start_on_free_by_default(table: PlansTable) -> None:
    assert table.default_plan == "free"


def test_kernel_features_and_min_plans(table: PlansTable) -> None:
    assert {f.key: f.min_plan for f in KERNEL_FEATURES} == KERNEL_MIN_PLANS
    for key, min_plan in KERNEL_MIN_PLANS.items():
        assert table.min_plan(key) == min_plan
        assert table.next_plan_with(key) == min_plan


def test_a_plan_includes_a_feature_from_its_minimum_plan_up(table: PlansTable) -> None:
    for key, min_plan in KERNEL_MIN_PLANS.items():
        for plan in PLAN_ORDER:
            assert table.includes(plan, key) is (PLAN_ORDER.index(plan) >= PLAN_ORDER.index(min_plan))
    # Free has no experiments at all; Enterprise has everything
    assert not table.includes("free", "experiments.ab")
    assert table.plan("enterprise").features == frozenset(table.features())


def test_unknown_keys_fail_loudly(table: PlansTable) -> None:
    assert table.min_plan("experiments.nope") is None
    assert table.next_plan_with("experiments.nope") is None
    with pytest.raises(KeyError, match=r"experiments\.nope"):
        table.includes("business", "experiments.nope")
    with pytest.raises(KeyError, match="gold"):
        table.plan("gold")  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="seats"):
        table.next_plan_lifting("seats", 1)  # type: ignore[arg-type]


def test_limits_refuse_negative_numbers() -> None:
    with pytest.raises(ValueError, match="sites"):
        Limits(sites=-1, experiments=0, members=0, monthly_visitors=0, retention_days=3)
    with pytest.raises(ValueError, match="retention_days"):
        Limits(sites=1, experiments=0, members=0, monthly_visitors=0, retention_days=0)


# ------------------------------------------------------ plugin features ---


def test_plugin_features_merge_with_the_kernels(table: PlansTable, plugin_features: list[Feature]) -> None:
    features = table.features()
    assert set(features) == set(KERNEL_MIN_PLANS) | {f.key for f in plugin_features}
    assert list(features)[: len(KERNEL_FEATURES)] == [f.key for f in KERNEL_FEATURES]
    assert table.min_plan("heatmaps.moves") == "business"
    assert table.min_plan("heatmaps.clicks") == "professional"
    assert table.min_plan("sessions.recordings") == "enterprise"
    assert table.min_plan("billing.stripe") == "free"
    assert not table.includes("professional", "heatmaps.moves")
    assert table.includes("business", "heatmaps.moves")
    assert not table.includes("business", "sessions.recordings")
    assert table.includes("enterprise", "sessions.recordings")
    assert table.next_plan_with("sessions.recordings", above="professional") == "enterprise"
    assert table.next_plan_with("heatmaps.clicks", above="professional") == "business"
    assert table.next_plan_with("heatmaps.clicks", above="enterprise") is None


def test_a_disabled_plugins_features_are_absent() -> None:
    table = load_plans(PluginHost.load(disabled={"sessions"}).features())
    assert table.min_plan("sessions.recordings") is None
    assert table.min_plan("heatmaps.moves") == "business"


def test_a_feature_key_declared_twice_is_refused() -> None:
    clash = Feature(key="flags", name="Plugin flags", min_plan="free")
    with pytest.raises(ValueError, match="'flags' is declared twice"):
        load_plans([clash])


# ------------------------------------------------------------ plans file ---


def test_the_plans_file_overrides_limits_features_and_default_plan(
    tmp_path: Path, plugin_features: list[Feature]
) -> None:
    path = write(
        tmp_path,
        """
default_plan = "professional"

[plans.business]
sites = 3
experiments = 10
members = "unlimited"
retention_days = 90

[plans.free]
monthly_visitors = -1

[features]
"heatmaps.moves" = "professional"
"experiments.mvt" = "enterprise"
""",
    )
    table = load_plans(plugin_features, path)
    assert table.default_plan == "professional"
    assert table.plan("business").limits == Limits(
        sites=3, experiments=10, members=None, monthly_visitors=None, retention_days=90
    )
    assert table.plan("free").limits.monthly_visitors is None
    assert table.plan("free").limits.sites == 1  # the rest keeps its defaults
    assert table.plan("professional").limits == DEFAULT_LIMITS["professional"]
    assert table.plan("enterprise").limits == DEFAULT_LIMITS["enterprise"]

    assert table.min_plan("heatmaps.moves") == "professional"
    assert table.includes("professional", "heatmaps.moves")
    assert table.features()["heatmaps.moves"].name == "Mouse move heatmap"
    assert table.min_plan("experiments.mvt") == "enterprise"
    assert not table.includes("business", "experiments.mvt")
    assert table.min_plan("sessions.recordings") == "enterprise"  # untouched

    assert table.next_plan_lifting("sites", 2) == "business"
    check_limit(table, "business", "sites", 2)
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "business", "sites", 3)
    assert exc.value.upgrade_to == "enterprise"


def test_an_empty_plans_file_keeps_the_defaults(tmp_path: Path, plugin_features: list[Feature]) -> None:
    table = load_plans(plugin_features, write(tmp_path, "# nothing to change\n"))
    assert [p.limits for p in table.plans()] == [DEFAULT_LIMITS[n] for n in PLAN_ORDER]
    assert table.default_plan == "free"


def test_a_feature_no_enabled_plugin_declares_is_ignored_with_a_warning(
    tmp_path: Path, plugin_features: list[Feature], caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, '[features]\n"sessions.recordings" = "business"\n"gone.thing" = "free"\n')
    with caplog.at_level(logging.WARNING, logger="segmently.tiers.plans"):
        table = load_plans(plugin_features, path)
    assert table.min_plan("sessions.recordings") == "business"
    assert table.min_plan("gone.thing") is None
    assert '"gone.thing"' in caplog.text
    assert str(path) in caplog.text


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[plans.gold]\nsites = 3\n", "plans.gold", "unknown plan 'gold'"),
        ("[plans.business]\nseats = 3\n", "plans.business.seats", "unknown limit"),
        ("[plans.business]\nsites = -2\n", "plans.business.sites", "must not be negative"),
        ("[plans.free]\nexperiments = 2.5\n", "plans.free.experiments", "whole number"),
        ("[plans.free]\nmembers = true\n", "plans.free.members", "whole number"),
        ('[plans.free]\nsites = "lots"\n', "plans.free.sites", "whole number"),
        ('[plans.enterprise]\nretention_days = "unlimited"\n', "plans.enterprise.retention_days", "days"),
        ("[plans.free]\nretention_days = 0\n", "plans.free.retention_days", "at least 1"),
        ("[plans.free]\nretention_days = -1\n", "plans.free.retention_days", "never unlimited"),
        ('[features]\n"heatmaps.moves" = "gold"\n', 'features."heatmaps.moves"', "unknown plan 'gold'"),
        ('[features]\n"heatmaps.moves" = 2\n', 'features."heatmaps.moves"', "unknown plan 2"),
        ('default_plan = "trial"\n', "default_plan", "unknown plan 'trial'"),
        ("plan = 3\n", "plan", "unknown setting"),
        ("plans = 3\n", "plans", "must be a table"),
        ("[plans]\nbusiness = 3\n", "plans.business", "must be a table"),
        ('features = ["heatmaps.moves"]\n', "features", "must be a table"),
        ("[plans.business\nsites = 3\n", None, "not valid TOML"),
        ("[plans.business]\nsites = 3\nsites = 4\n", None, "not valid TOML"),
    ],
)
def test_a_bad_plans_file_names_the_file_and_the_key(
    tmp_path: Path, plugin_features: list[Feature], text: str, key: str | None, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlansFileError) as exc:
        load_plans(plugin_features, path)
    message = str(exc.value)
    assert str(path) in message
    assert problem in message
    assert exc.value.key == key
    assert exc.value.path == path
    if key is not None:
        assert f"{path}: {key}: " in message
    else:
        assert "line" in message  # TOML errors say where


def test_an_unreadable_plans_file_is_a_plans_file_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PlansFileError, match="cannot be read") as exc:
        load_plans([], missing)
    assert str(missing) in str(exc.value)

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"sites = '\xff'\n")
    with pytest.raises(PlansFileError, match=r"binary\.toml") as exc:
        load_plans([], binary)


# ---------------------------------------------------------------- limits ---


def test_the_limit_message_names_the_limit_usage_and_the_plan_that_lifts_it(table: PlansTable) -> None:
    check_limit(table, "professional", "sites", 0)
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "professional", "sites", 1)
    err = exc.value
    assert err.message == "Your Professional plan allows 1 site (1/1 used). Upgrade to Enterprise for more."
    assert str(err) == err.message == err.detail
    assert (err.status_code, err.limit, err.used, err.allowed, err.plan, err.upgrade_to) == (
        402,
        "sites",
        1,
        1,
        "professional",
        "enterprise",
    )


@pytest.mark.parametrize(
    ("plan", "limit", "used", "message", "upgrade_to"),
    [
        (
            "free",
            "experiments",
            0,
            "Your Free plan allows 0 experiments (0/0 used). Upgrade to Professional for more.",
            "professional",
        ),
        (
            "professional",
            "experiments",
            1,
            "Your Professional plan allows 1 experiment (1/1 used). Upgrade to Business for more.",
            "business",
        ),
        (
            "free",
            "members",
            0,
            "Your Free plan allows 0 team members (0/0 used). Upgrade to Professional for more.",
            "professional",
        ),
        (
            "business",
            "members",
            2,
            "Your Business plan allows 2 team members (2/2 used). Upgrade to Enterprise for more.",
            "enterprise",
        ),
        (
            "free",
            "monthly_visitors",
            5_000,
            "Your Free plan allows 5,000 monthly visitors (5,000/5,000 used). "
            "Upgrade to Professional for more.",
            "professional",
        ),
    ],
)
def test_limit_messages(
    table: PlansTable, plan: PlanName, limit: str, used: int, message: str, upgrade_to: PlanName
) -> None:
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, plan, limit, used)  # type: ignore[arg-type]
    assert exc.value.message == message
    assert exc.value.upgrade_to == upgrade_to
    assert exc.value.status_code == 402


def test_unlimited_never_raises(table: PlansTable) -> None:
    for limit in ("sites", "experiments", "members", "monthly_visitors"):
        check_limit(table, "enterprise", limit, 10**9)
    check_limit(table, "professional", "monthly_visitors", 10**9)


def test_after_a_downgrade_only_creating_more_is_refused(table: PlansTable) -> None:
    # three experiments from Enterprise days stay; a fourth is refused on Business
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "business", "experiments", 3)
    assert exc.value.message == (
        "Your Business plan allows 2 experiments (3/2 used). Upgrade to Enterprise for more."
    )
    assert usage(table, "business", {"experiments": 3})["experiments"].at_limit


def test_adding_several_at_once(table: PlansTable) -> None:
    check_limit(table, "business", "members", 0, adding=2)
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "business", "members", 1, adding=2)
    assert exc.value.upgrade_to == "enterprise"


def test_403_when_no_plan_lifts_the_limit(tmp_path: Path) -> None:
    table = load_plans([], write(tmp_path, "[plans.enterprise]\nsites = 3\n"))
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "enterprise", "sites", 3)
    err = exc.value
    assert err.status_code == 403
    assert err.upgrade_to is None
    assert (
        err.message == "Your Enterprise plan allows 3 sites (3/3 used). No plan on this server allows more."
    )
    assert table.next_plan_lifting("sites", 4) is None


def test_a_cheaper_plan_with_more_room_is_no_upgrade(tmp_path: Path) -> None:
    table = load_plans([], write(tmp_path, "[plans.free]\nsites = 10\n[plans.enterprise]\nsites = 1\n"))
    assert table.next_plan_lifting("sites", 2) == "free"
    with pytest.raises(LimitExceeded) as exc:
        check_limit(table, "business", "sites", 1)
    assert exc.value.status_code == 403


@pytest.mark.parametrize(
    ("limit", "needed", "above", "expected"),
    [
        ("sites", 1, None, "free"),
        ("sites", 2, None, "enterprise"),
        ("experiments", 1, None, "professional"),
        ("experiments", 2, None, "business"),
        ("experiments", 3, None, "enterprise"),
        ("experiments", 1, "professional", "business"),
        ("members", 2, None, "business"),
        ("monthly_visitors", 5_001, None, "professional"),
        ("retention_days", 30, None, "business"),
        ("retention_days", 366, None, None),
        ("sites", 1, "enterprise", None),
    ],
)
def test_next_plan_lifting(
    table: PlansTable, limit: str, needed: int, above: PlanName | None, expected: PlanName | None
) -> None:
    assert table.next_plan_lifting(limit, needed, above=above) == expected  # type: ignore[arg-type]


def test_retention_is_not_a_count(table: PlansTable) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        check_limit(table, "free", "retention_days", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seats"):
        usage(table, "free", {"seats": 1})
    with pytest.raises(ValueError, match="negative"):
        check_limit(table, "free", "sites", -1)


# -------------------------------------------------------------- features ---


@pytest.mark.parametrize(
    ("plan", "key", "message"),
    [
        (
            "professional",
            "experiments.mvt",
            "Multivariate tests need the Business plan; you are on Professional.",
        ),
        ("free", "experiments.ab", "A/B tests need the Professional plan; you are on Free."),
        ("business", "api.management", "Management API needs the Enterprise plan; you are on Business."),
        (
            "business",
            "sessions.recordings",
            "Session recordings need the Enterprise plan; you are on Business.",
        ),
        (
            "professional",
            "heatmaps.moves",
            "Mouse move heatmap needs the Business plan; you are on Professional.",
        ),
    ],
)
def test_feature_not_included(table: PlansTable, plan: PlanName, key: str, message: str) -> None:
    with pytest.raises(FeatureNotIncluded) as exc:
        require_feature(table, plan, key)
    err = exc.value
    assert err.message == str(err) == err.detail == message
    assert err.status_code == 402
    assert err.feature == key
    assert err.plan == plan
    assert err.upgrade_to == table.min_plan(key)


def test_included_features_pass(table: PlansTable) -> None:
    require_feature(table, "business", EXPERIMENTS_MVT.key)
    require_feature(table, "enterprise", "sessions.recordings")
    require_feature(table, "free", "billing.stripe")
    with pytest.raises(KeyError):
        require_feature(table, "enterprise", "experiments.nope")


# ----------------------------------------------------------------- usage ---


def test_usage_labels(table: PlansTable) -> None:
    assert usage(table, "professional", {"sites": 1, "experiments": 0, "members": 1}) == {
        "sites": Usage(used=1, allowed=1, label="1/1 sites", at_limit=True),
        "experiments": Usage(used=0, allowed=1, label="0/1 experiments", at_limit=False),
        "members": Usage(used=1, allowed=1, label="1/1 team members", at_limit=True),
    }
    assert usage(table, "enterprise", {"experiments": 3})["experiments"] == Usage(
        used=3, allowed=None, label="3/∞ experiments", at_limit=False
    )
    free = usage(table, "free", {"monthly_visitors": 4_321})["monthly_visitors"]
    assert free.label == "4,321/5,000 monthly visitors"
    assert not free.at_limit


# ------------------------------------------------------------------ docs ---


def test_docs_list_every_feature_with_its_minimum_plan(table: PlansTable) -> None:
    doc = (ROOT / "docs" / "plans.md").read_text()
    for key, feature in table.features().items():
        if key.startswith("dummy."):  # the test-only plugin
            continue
        assert f"`{key}`" in doc
        row = next(line for line in doc.splitlines() if f"`{key}`" in line and line.startswith("|"))
        assert feature.min_plan.capitalize() in row, row
