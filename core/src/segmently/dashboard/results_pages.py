"""An experiment's results page and the organization's cross-site analytics table.

Both call the services the JSON API answers with: ``analytics.results.results_of`` (what
``GET /api/v1/experiments/{id}/results`` returns) and ``analytics.overview.overview`` (``GET
/api/v1/analytics/overview``). The timeline is drawn by uPlot (``static/results.js``) from the
same numbers as the table under it; funnels are SVG bars drawn here, so they need no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import STATIC, page, static_url
from segmently.db.models import Experiment, Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.analytics import schemas
from segmently.domain.analytics.overview import overview
from segmently.domain.analytics.results import results_of
from segmently.domain.experiments import services as experiments
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.kernel import Kernel
from segmently.tiers import usage
from segmently.tiers.guards import plan_of, require_feature_for
from segmently.tiers.limits import FeatureNotIncluded
from segmently.tiers.plans import EXPERIMENTS_AB, EXPERIMENTS_FUNNELS

PALETTE: Final = ("#3346d3", "#e04f16", "#079455", "#a11043", "#6938ef", "#0e9384")
"""One colour per variant, in order, shared by the cards, the funnel bars and the timeline."""
CARD_ORDERS: Final = {"": "Setup", "visitors": "Visitors", "conversions": "Conversions", "rate": "Rate"}
STATUSES: Final = {
    "": "Any state",
    "live": "Live",
    "paused": "Paused",
    "draft": "Draft",
    "archived": "Archived",
}
RANGES: Final = {"all": "All time", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days"}
SORTS: Final = ("date", "visitors", "conversions", "rate")
DEFAULTS: Final = {("range", "all"), ("sort", "date"), ("order", "desc")}
"""Filter values left out of links (the overview's defaults)."""
MAX_WEIGHED: Final = 100
"""Listed experiments whose best lift, confidence and winner are worked out (each is a results look)."""


def pct(value: float | None, digits: int = 1) -> str:
    """``5.2 %`` (a no-break space before the sign); a dash for no value."""
    return "—" if value is None else f"{value:,.{digits}f}\u00a0%"


def signed_pct(value: float | None) -> str:
    """``+30.0 %`` or ``−12.5 %``; a dash for no value."""
    return "—" if value is None else f"{value:+,.1f}\u00a0%".replace("-", "−")


def money(value: float | None) -> str:
    """``1,300.00``; a dash for no value (the amount is in the site's own currency)."""
    return "—" if value is None else f"{value:,.2f}"


def seconds(value: float | None) -> str:
    """``42 s`` or ``2 min 5 s``; a dash for no value."""
    if value is None:
        return "—"
    whole = round(value)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60} s"


def optional_static_url(name: str) -> str | None:
    """Like ``static_url``, or None while the file is not built (``static/dist`` is not in git)."""
    return static_url(name) if (STATIC / name).is_file() else None


@dataclass(frozen=True, slots=True)
class Card:
    """A variant's card: its figures, its colour and the width of its rate bar (in %)."""

    variant: schemas.VariantResult
    color: str
    bar: float
    best: bool


def cards_of(results: schemas.ResultsOut, order: str) -> list[Card]:
    """The variant cards; the best rate is marked when anyone converted, bars scale to it."""
    top = max((v.conversion_rate for v in results.variants), default=0.0)
    cards = [
        Card(
            variant=v,
            color=PALETTE[i % len(PALETTE)],
            bar=100.0 * v.conversion_rate / top if top else 0.0,
            best=0 < top == v.conversion_rate,
        )
        for i, v in enumerate(results.variants)
    ]
    key = {"visitors": "visitors", "conversions": "conversions", "rate": "conversion_rate"}.get(order)
    if key:
        cards.sort(key=lambda c: getattr(c.variant, key), reverse=True)
    return cards


def timeline_data(results: schemas.ResultsOut) -> dict[str, Any]:
    """What ``results.js`` draws: per variant, daily visitors and the cumulative conversion rate."""
    series = []
    for i, v in enumerate(results.variants):
        points = [next((p for p in day.variants if p.key == v.key), None) for day in results.timeline]
        series.append(
            {
                "name": v.name,
                "color": PALETTE[i % len(PALETTE)],
                "visitors": [p.visitors if p else 0 for p in points],
                "rate": [round(p.cumulative_conversion_rate, 4) if p else 0.0 for p in points],
            }
        )
    return {"dates": [day.date for day in results.timeline], "series": series}


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a funnel chart (SVG units)."""

    y: float
    width: float
    color: str
    label: str


@dataclass(frozen=True, slots=True)
class FunnelChart:
    """A funnel as grouped horizontal bars: one group per step, one bar per variant."""

    funnel: schemas.FunnelResult
    steps: list[tuple[str, float]]  # label, y of the group's middle
    bars: list[Bar]
    height: float


BAR_H: Final = 16.0
BAR_GAP: Final = 4.0
GROUP_GAP: Final = 18.0
BAR_SPAN: Final = 380.0  # the widest bar (100 %), right of the 150-unit label column


def funnel_chart(funnel: schemas.FunnelResult, colors: dict[str, str]) -> FunnelChart:
    """The bars of a funnel: the share of the variant's visitors who reached each step."""
    bars: list[Bar] = []
    steps: list[tuple[str, float]] = []
    y = 8.0
    per_group = len(funnel.variants) * (BAR_H + BAR_GAP) - BAR_GAP
    for index, label in enumerate(funnel.steps):
        steps.append((label, y + per_group / 2))
        for variant in funnel.variants:
            step = variant.steps[index]
            color = colors.get(variant.key, PALETTE[0])
            bars.append(Bar(y, BAR_SPAN * step.rate / 100.0, color, f"{step.rate:.1f} %"))
            y += BAR_H + BAR_GAP
        y += GROUP_GAP - BAR_GAP
    return FunnelChart(funnel, steps, bars, y - GROUP_GAP + 8.0)


@dataclass(frozen=True, slots=True)
class Weighed:
    """The overview row's figures from the experiment's results: best lift, its confidence, winner."""

    lift: float | None
    confidence: float | None
    winner: str | None


async def weigh(db_session: DbSession, actor: Actor, rows: list[schemas.OverviewRow]) -> dict[str, Weighed]:
    """Best lift, confidence and winner of each listed experiment that ever ran (the first 100)."""
    ran = [r.id for r in rows if r.activated_at is not None][:MAX_WEIGHED]
    if not ran:
        return {}
    found = await db_session.scalars(
        select(Experiment).where(Experiment.id.in_(ran), Experiment.organization_id == actor.organization_id)
    )
    out: dict[str, Weighed] = {}
    for experiment in found.all():
        results = await results_of(db_session, experiment)
        treatments = [v for v in results.variants if not v.control and v.lift is not None]
        best = max(treatments, key=lambda v: v.lift or 0.0, default=None)
        out[experiment.id] = Weighed(
            best.lift if best else None,
            best.confidence if best else None,
            results.winner.variant_name if results.winner else None,
        )
    return out


def overview_href(filters: dict[str, str], **changed: str) -> str:
    """``/analytics`` with the filters, ``changed`` applied, and defaults left out."""
    params = {**filters, **changed}
    kept = {k: v for k, v in params.items() if v and (k, v) not in DEFAULTS}
    return "/analytics" + (f"?{urlencode(kept)}" if kept else "")


def sort_links(filters: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Per sortable column: the link (the other order when it is the current sort), its ``aria-sort``."""
    links: dict[str, tuple[str, str | None]] = {}
    for key in SORTS:
        current = filters["sort"] == key
        flipped = "asc" if current and filters["order"] == "desc" else "desc"
        state = ("descending" if filters["order"] == "desc" else "ascending") if current else None
        links[key] = (overview_href(filters, sort=key, order=flipped), state)
    return links


async def upgrade_for(kernel: Kernel, actor: Actor, feature: str) -> str | None:
    """The upgrade message when the organization's plan lacks ``feature``."""
    try:
        await require_feature_for(kernel, actor.organization, feature)
    except FeatureNotIncluded as exc:
        return exc.message
    return None


def choice(value: str | None, allowed: Any, default: str) -> str:
    """``value`` when it is one of ``allowed``; else ``default`` (a page ignores odd query strings)."""
    return value if value is not None and value in allowed else default


class ResultsPages(Controller):
    """``/experiments/{id}`` (an experiment's results) and ``/analytics`` (every experiment)."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/experiments/{experiment_id:str}", name="dashboard:results")
    async def results(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        cards: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        """Winner banner, variant cards, SRM warning, goals, timeline and funnels, exports."""
        experiment = await experiments.get(db_session, actor, experiment_id)
        site = await db_session.get_one(Site, experiment.site_id)
        results = await results_of(db_session, experiment)
        order = choice(cards, CARD_ORDERS, "")
        colors = {v.key: PALETTE[i % len(PALETTE)] for i, v in enumerate(results.variants)}
        funnel_upgrade = await upgrade_for(kernel, actor, EXPERIMENTS_FUNNELS.key)
        return await page(
            request,
            "results.html",
            actor,
            db_session,
            kernel,
            "analytics",
            experiment=experiment,
            site=site,
            results=results,
            names={v.key: v.name for v in results.variants},
            colors=colors,
            cards=cards_of(results, order),
            card_order=order,
            card_orders=CARD_ORDERS,
            timeline=timeline_data(results),
            funnels=[funnel_chart(f, colors) for f in results.funnels],
            funnel_upgrade=funnel_upgrade,
            pct=pct,
            signed_pct=signed_pct,
            money=money,
            seconds=seconds,
            uplot_js=optional_static_url("dist/uPlot.iife.min.js"),
            uplot_css=optional_static_url("dist/uPlot.min.css"),
            results_js=static_url("results.js"),
            results_css=static_url("results.css"),
        )

    @get("/analytics", name="dashboard:analytics")
    async def analytics(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        site: Annotated[str | None, QueryParameter(required=False)] = None,
        status: Annotated[str | None, QueryParameter(required=False)] = None,
        range_: Annotated[str | None, QueryParameter(name="range", required=False)] = None,
        sort: Annotated[str | None, QueryParameter(required=False)] = None,
        order: Annotated[str | None, QueryParameter(required=False)] = None,
    ) -> Template:
        """Every experiment of the organization: filters, sortable columns, the summary."""
        filters = {
            "site": site or "",
            "status": choice(status, STATUSES, ""),
            "range": choice(range_, RANGES, "all"),
            "sort": choice(sort, SORTS, "date"),
            "order": choice(order, ("asc", "desc"), "desc"),
        }
        out = await overview(
            db_session,
            actor,
            site_id=filters["site"] or None,
            status=filters["status"] or None,  # type: ignore[arg-type]
            time_range=filters["range"],  # type: ignore[arg-type]
            sort=filters["sort"],  # type: ignore[arg-type]
            order=filters["order"],  # type: ignore[arg-type]
        )
        sites = (
            await db_session.execute(
                select(Site.id, Site.name)
                .where(Site.organization_id == actor.organization_id)
                .order_by(Site.name)
            )
        ).all()
        plan = await plan_of(kernel, actor.organization)
        used = await experiments.count_experiments(db_session, actor.organization_id)
        visitors = sum(r.visitors for r in out.experiments)
        conversions = sum(r.conversions for r in out.experiments)
        return await page(
            request,
            "analytics.html",
            actor,
            db_session,
            kernel,
            "analytics",
            overview=out,
            weighed=await weigh(db_session, actor, out.experiments),
            sites=sites,
            filters=filters,
            statuses=STATUSES,
            ranges=RANGES,
            sorts=sort_links(filters),
            totals={
                "visitors": visitors,
                "conversions": conversions,
                "rate": 100.0 * conversions / visitors if visitors else 0.0,
            },
            badge=usage(kernel.plans, plan, {"experiments": used})["experiments"],
            upgrade=await upgrade_for(kernel, actor, EXPERIMENTS_AB.key),
            pct=pct,
            signed_pct=signed_pct,
            results_css=static_url("results.css"),
        )
