"""The wizard's last tab: everything at a glance, what blocks a launch, "Would fire" preview links."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from litestar.exceptions import HTTPException

from segmently.db.models import Experiment, Organization, Site, Variant
from segmently.domain.experiments import services, validation
from segmently.domain.experiments.schemas import ExperimentIn
from segmently.kernel import Kernel
from segmently.tiers.guards import plan_of
from segmently.tiers.limits import FeatureNotIncluded, require_feature

FEATURES = {
    "experiments.mvt": "Multivariate tests",
    "experiments.behavioral_targeting": "Behavioral triggers and referral sources",
    "experiments.attribute_targeting": "Attribute rules",
    "experiments.funnels": "Funnel goals",
    "experiments.scheduling": "Scheduling",
    "integrations.ga4": "Google Analytics 4",
    "integrations.mixpanel": "Mixpanel",
}
"""The wizard's plan-gated features."""


@dataclass(frozen=True, slots=True)
class Preview:
    """A variant (or MVT cell) and the address that shows it on the site."""

    name: str
    key: str
    url: str


@dataclass(slots=True)
class Review:
    """What the Review & launch tab shows."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    previews: list[Preview] = field(default_factory=list)
    cells: int = 0


def preview_url(site: Site, slug: str, key: str) -> str:
    """``{site url}?segmently_preview={slug}:{variant key}``: the snippet shows that variant."""
    joiner = "&" if "?" in site.url else "?"
    return f"{site.url}{joiner}segmently_preview={quote(slug)}:{quote(key)}"


async def locked_features(kernel: Kernel, organization: Organization) -> dict[str, str]:
    """The wizard's features the organization's plan lacks, each with the API's upgrade message."""
    plan = await plan_of(kernel, organization)
    locked = {}
    for key, name in FEATURES.items():
        try:
            require_feature(kernel.plans, plan, key)
        except FeatureNotIncluded as exc:
            locked[key] = exc.message
        except KeyError:  # a plugin's feature while the plugin is disabled
            locked[key] = f"{name}: not available on this server."
    return locked


def review(experiment: Experiment, site: Site, cfg: ExperimentIn, variants: list[Variant]) -> Review:
    """Blocking problems, warnings and preview links of the stored configuration."""
    out = Review()
    if experiment.status != "draft":
        out.problems.append(
            f"This experiment is {experiment.status}: only a draft can be launched from here "
            "(the site page pauses, resumes and archives)."
        )
    try:
        out.warnings += validation.validate(cfg)
    except HTTPException as exc:
        items = exc.extra if isinstance(exc.extra, list) else []
        out.problems += [f"{item['key']}: {item['message']}" for item in items if isinstance(item, dict)]
    if cfg.type == "mvt":
        cells = services.mvt_cells(cfg.sections) if cfg.sections else []
        out.cells = len(cells)
        arms = [(v.name, v.key) for v in variants] or [(c.name, c.key) for c in cells]
    else:
        arms = [(v.name, v.key) for v in variants]
        if len(arms) < 2:
            out.problems.append("An experiment needs at least two variants to start")
    if not any(g.primary for g in cfg.goals):
        out.warnings.append(
            "No primary goal: conversions are only counted when your code calls "
            "Segmently.track('conversion')."
        )
    if not cfg.targeting.url_rules:
        out.warnings.append("No URL rules: the experiment runs on every page of the site.")
    out.previews = [Preview(name, key, preview_url(site, experiment.slug, key)) for name, key in arms]
    return out
