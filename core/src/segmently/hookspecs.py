"""The plugin contract: every hook a Segmently plugin may implement.

Naming grammar (as in datasette): ``register_*`` hooks return a list and every
plugin's list is collected; ``on_*`` hooks are notifications that return nothing;
``get_*`` hooks are asked in turn and the first answer that is not ``None`` wins;
``export_*`` hooks are asked of every plugin and each answer is kept under the
plugin's name.

Any hook implementation may be ``async def``; the kernel awaits it. Only
:mod:`segmently.plugins` calls hooks. Implementations take no default argument
values (pluggy would silently never pass them).

Plugins mark implementations with :data:`hookimpl`::

    from segmently.hookspecs import Feature, hookimpl

    @hookimpl
    def register_features() -> list[Feature]:
        return [Feature(key="heatmaps.clicks", name="Click heatmap", min_plan="professional")]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import pluggy

PROJECT_NAME = "segmently"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

PlanName = Literal["free", "professional", "business", "enterprise"]
PLAN_ORDER: tuple[PlanName, ...] = ("free", "professional", "business", "enterprise")

# The 15 domain events of the spec's webhook section, in its order.
DOMAIN_EVENT_TYPES: tuple[str, ...] = (
    "experiment.started",
    "experiment.paused",
    "experiment.archived",
    "experiment.created",
    "experiment.deleted",
    "significance.reached",
    "project.created",
    "project.deleted",
    "member.invited",
    "member.joined",
    "member.removed",
    "team.ownership_transferred",
    "subscription.upgraded",
    "subscription.downgraded",
    "payment.failed",
)


class Feature(msgspec.Struct, frozen=True, kw_only=True):
    """A feature a plugin provides, gated by plan.

    Attributes:
        key: Dotted key, ``<plugin>.<feature>`` (``heatmaps.moves``).
        name: Human name shown in the dashboard and ``segmently plugins list``.
        min_plan: The lowest plan that includes the feature by default; the
            self-hoster's plans file may move it.
    """

    key: str
    name: str
    min_plan: PlanName


class OrgRef(msgspec.Struct, frozen=True, kw_only=True):
    """What a hook learns about an organization."""

    id: str
    name: str
    plan: PlanName = "free"


class SiteRef(msgspec.Struct, frozen=True, kw_only=True):
    """What a hook learns about a site (the spec's "project")."""

    id: str
    organization_id: str
    name: str
    url: str


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A committed change the organization's integrations may care about.

    Attributes:
        id: Unique id; delivery is at least once, so consumers dedupe on it.
        event: One of :data:`DOMAIN_EVENT_TYPES`.
        organization_id: The organization the event belongs to (``team_id`` in
            the spec's webhook payload).
        timestamp: When the change was committed (UTC).
        data: Event-specific fields, as in the spec's webhook payloads.
    """

    id: str
    event: str
    organization_id: str | None
    timestamp: dt.datetime
    data: dict[str, Any]


class IngestedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One visitor event after it was durably stored."""

    event_id: str
    event_name: str
    visitor_id: str
    site_id: str
    timestamp: dt.datetime
    session_id: str | None = None
    experiment_id: str | None = None
    variant_id: str | None = None
    url: str | None = None
    event_data: dict[str, Any] | None = None


class EventType(msgspec.Struct, frozen=True, kw_only=True):
    """An event name a plugin ingests, with the shape of its ``event_data``.

    Attributes:
        name: The event name (``heatmap_click``).
        data_type: msgspec type ``event_data`` is validated against.
        feature: Feature key an organization needs for the event to be accepted.
    """

    name: str
    data_type: type[Any]
    feature: str | None = None


class SnippetModule(msgspec.Struct, frozen=True, kw_only=True):
    """A lazily loaded snippet chunk and the config handed to it."""

    name: str
    src: str
    config: dict[str, Any] = {}


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A scheduled job; it must be idempotent, since a run may repeat after a crash.

    Attributes:
        name: Unique job name (``heatmaps_rollup``).
        func: Coroutine function run by the scheduler; it opens its own sessions.
        seconds: Interval between runs, for an interval job.
        cron: Crontab expression, for a cron job (used when ``seconds`` is None).
    """

    name: str
    func: Callable[[], Awaitable[None]]
    seconds: float | None = None
    cron: str | None = None


class NavItem(msgspec.Struct, frozen=True, kw_only=True):
    """A link in the dashboard navigation."""

    label: str
    href: str
    feature: str | None = None


# ---------------------------------------------------------------- start-up ---


@hookspec
def register_features() -> Sequence[Feature]:  # type: ignore[empty-body]
    """Declare the features this plugin provides and their minimum plans.

    Called once at start-up and by ``segmently plugins list``; the kernel merges
    the keys into the plans table.

    :return: The plugin's features.
    """


@hookspec
def register_models() -> Sequence[type[Any]]:  # type: ignore[empty-body]
    """Declare SQLAlchemy models on the kernel's shared ``Base.metadata``.

    Called once at start-up before migrations are checked; importing the models
    is what attaches them to the metadata.

    :return: Model classes.
    """


@hookspec
def register_migrations() -> Sequence[Path]:  # type: ignore[empty-body]
    """Declare Alembic version directories holding this plugin's migration branch.

    Called by ``segmently migrate`` and at start-up. The branch is named after the
    plugin and tracked in its own version table, so a plugin can be installed or
    removed without touching the kernel's history.

    :return: Directories of Alembic revision files.
    """


@hookspec
def register_routes() -> Sequence[Any]:  # type: ignore[empty-body]
    """Declare Litestar controllers, routers or route handlers.

    Called once when the app is built. The kernel mounts them behind its central
    plugin guard (server enablement, plan entitlement, per-site switch); plugins
    never write their own gate. Handlers may set ``opt={"feature": "<key>"}`` to
    require one feature rather than any of the plugin's.

    :return: Route handlers, controllers or routers.
    """


@hookspec
def register_event_types() -> Sequence[EventType]:  # type: ignore[empty-body]
    """Declare event names this plugin ingests through ``/api/v1/events``.

    Called once at start-up.

    :return: Event types with their ``event_data`` shapes and required features.
    """


@hookspec
def register_jobs() -> Sequence[JobSpec]:  # type: ignore[empty-body]
    """Declare scheduled jobs.

    Called once when the scheduler starts on each node; each run takes a
    cluster-wide lock, so exactly one node runs it.

    :return: Job specifications.
    """


@hookspec
def register_template_dirs() -> Sequence[Path]:  # type: ignore[empty-body]
    """Declare Jinja template directories for the plugin's dashboard pages.

    Called once when the app is built.

    :return: Directories, searched after the kernel's own.
    """


# ------------------------------------------------------ per organization ---


@hookspec
def register_dashboard_nav(org: OrgRef) -> Sequence[NavItem]:  # type: ignore[empty-body]
    """Declare dashboard navigation entries for one organization.

    Called when a dashboard page is rendered, only for plugins switched on for
    ``org``.

    :param org: The organization whose dashboard is shown.
    :return: Navigation items.
    """


@hookspec
def register_snippet_modules(  # type: ignore[empty-body]
    site: SiteRef, entitlements: frozenset[str]
) -> Sequence[SnippetModule]:
    """Declare lazily loaded snippet chunks for one site's config.

    Called when ``/api/v1/sdk/config`` is built, only for plugins switched on for
    the site.

    :param site: The site whose config is built.
    :param entitlements: Feature keys the site's organization is entitled to.
    :return: Snippet modules with their configuration.
    """


@hookspec
def on_events_ingested(site: SiteRef, events: Sequence[IngestedEvent]) -> None:
    """Notification after a batch of visitor events was durably committed.

    Called after the commit, only for plugins switched on for the site. A
    failure is logged and never affects the ingestion response.

    :param site: The site the events belong to.
    :param events: The stored events, in batch order.
    """


@hookspec
def on_domain_event(event: DomainEvent) -> None:
    """Notification of a committed domain event (``experiment.started`` …).

    Delivered at least once from the kernel's outbox, only to plugins switched on
    for the event's organization; dedupe on ``event.id``. Raising makes the kernel
    deliver the event again later.

    :param event: The domain event.
    """


@hookspec
def on_purge(org: OrgRef, before: dt.datetime | None, site_id: str | None, visitor_id: str | None) -> None:
    """Notification to delete plugin data: the organization's old data, or one visitor's.

    Called for every server-enabled plugin, entitled or not, since the data must go
    either way. It comes in two kinds:

    - the daily retention purge: ``before`` is set (the plan's window), ``site_id``
      and ``visitor_id`` are None; delete the organization's data recorded before it.
    - a visitor's deletion (data rights): ``site_id`` and ``visitor_id`` are set,
      ``before`` is None; delete everything about that visitor of that site, of any
      age. The kernel has committed the deletion of its own rows by then.

    An implementation that does not declare ``visitor_id`` is never called for a
    visitor's deletion, and the deletion reports the plugin as not purged.

    :param org: The organization whose data goes.
    :param before: Delete data recorded before this instant (UTC); None for a visitor.
    :param site_id: The visitor's site; None for the retention purge.
    :param visitor_id: The visitor whose data goes; None for the retention purge.
    """


@hookspec
def get_plan(org: OrgRef) -> PlanName | None:
    """Answer which plan an organization is on.

    Asked of every server-enabled plugin (never subset by the plan being
    computed); the first non-None answer wins. The kernel's default answers last
    with the stored plan; the billing plugin answers from Stripe.

    :param org: The organization.
    :return: A plan name, or None to let the next plugin answer.
    """


# ----------------------------------------------------------- data rights ---


@hookspec
def export_visitor(site: SiteRef, visitor_id: str) -> Mapping[str, Any] | None:
    """Answer with everything this plugin holds about one visitor of a site.

    Called by the visitor data export (``GET /api/v1/projects/{id}/visitors/{visitor}/export``
    and ``segmently visitors export``) for every server-enabled plugin, switched on or
    not, since data it stored earlier belongs in the export either way. The answer is
    placed under the plugin's name in the export document.

    :param site: The visitor's site.
    :param visitor_id: The visitor (the snippet's ``seg_visitor_id``).
    :return: JSON-serializable data (dicts, lists, strings, numbers, datetimes,
        msgspec structs), or None when the plugin holds nothing about the visitor.
    """
