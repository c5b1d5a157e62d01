"""The Litestar application: kernel routes, plugin routes behind the guard, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from sqlalchemy.ext.asyncio import AsyncSession

import segmently.db.models  # noqa: F401  (kernel tables on the metadata)
from segmently import __version__
from segmently.dashboard import dashboard_routes, dashboard_templates
from segmently.db.base import utcnow
from segmently.db.migrate import ensure_migrated
from segmently.demo import demo_routes
from segmently.domain.accounts.controllers import AuthController, MeController
from segmently.domain.accounts.keys import ManagementKeyController
from segmently.domain.accounts.org_controllers import (
    InvitationController,
    OrganizationsController,
    TeamController,
)
from segmently.domain.accounts.reset import PasswordResetController
from segmently.domain.alerts.controllers import AlertsController
from segmently.domain.alerts.jobs import kernel_jobs
from segmently.domain.analytics.controllers import AnalyticsController, ResultsController
from segmently.domain.events.controllers import EventsController
from segmently.domain.events.lane import EventsLane
from segmently.domain.events.live_controllers import LiveEventsController
from segmently.domain.events.partitions import ensure_partitions
from segmently.domain.events.visitors_controllers import VisitorController
from segmently.domain.experiments.controllers import ExperimentController, SiteExperimentsController
from segmently.domain.flags.controllers import FlagController
from segmently.domain.manage.controllers import ManageController
from segmently.domain.sdk.config import ConfigCache
from segmently.domain.sdk.controllers import SdkController
from segmently.domain.sdk.snippet import SnippetController, SnippetFiles
from segmently.domain.sites.controllers import ProjectController
from segmently.domain.sites.settings import SiteSettingsController
from segmently.http.access import access_guard
from segmently.http.deps import provide_actor, provide_kernel
from segmently.http.errors import EXCEPTION_HANDLERS
from segmently.http.health import health
from segmently.http.idempotency import VERSION_HANDLERS
from segmently.http.precompressed import Compression
from segmently.http.protection import RateLimits, csrf_middleware, security_headers
from segmently.kernel import Kernel, make_kernel
from segmently.plugins.guard import plugin_routers
from segmently.plugins.host import PluginHost
from segmently.scheduler import Jobs, Scheduler
from segmently.settings import Settings

log = logging.getLogger(__name__)


async def provide_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """A session whose transaction commits before the response is sent (rolled back on error)."""
    kernel: Kernel = state.kernel
    async with kernel.db.sessions() as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            raise
        await session.commit()


class MetricsController(PrometheusController):
    """Prometheus metrics (aggregated across workers when several run)."""

    path = "/metrics"
    include_in_schema = False
    opt = {"access": "public"}


class SegmentlyApp(Litestar):
    """Litestar, with the events lane in front of it (:mod:`segmently.domain.events.lane`)."""

    events_lane: EventsLane | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """The events routes' common case in the lane; everything else as Litestar serves it."""
        lane = self.events_lane
        if lane is not None and lane.serves(scope):
            await lane(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Any, receive: Any, send: Any) -> None:
        """Litestar's own handling of a request, past the lane."""
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, plugins: PluginHost | None = None) -> Litestar:
    """Build the app; the database must be migrated (checked at start-up).

    Args:
        settings: Server settings; read from the environment when omitted.
        plugins: Loaded plugins; discovered through entry points when omitted.
    """
    settings = settings or Settings.from_env()
    kernel = make_kernel(settings, plugins)
    host, db = kernel.plugins, kernel.db

    @contextlib.asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        try:
            await ensure_migrated(db, host)
        except BaseException:
            await db.dispose()
            raise
        await ensure_partitions(db, utcnow())
        await kernel.outbox.start()
        scheduler = Scheduler(Jobs(kernel, kernel_jobs(kernel))) if settings.scheduler else None
        if scheduler is not None:
            scheduler.start()
        log.info(
            "segmently %s started",
            __version__,
            extra={"plugins": sorted(host.enabled), "database": db.engine.dialect.name},
        )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()
            await kernel.outbox.stop()
            await db.dispose()
            kernel.countries.close()

    metrics = PrometheusConfig(
        app_name="segmently", prefix="segmently", group_path=True, exclude_opt_key="exclude_from_metrics"
    )
    route_handlers: list[Any] = [
        health,
        MetricsController,
        AuthController,
        MeController,
        PasswordResetController,
        ManagementKeyController,
        OrganizationsController,
        TeamController,
        InvitationController,
        ProjectController,
        VisitorController,
        SiteSettingsController,
        FlagController,
        SiteExperimentsController,
        ExperimentController,
        ManageController,
        ResultsController,
        AnalyticsController,
        SdkController,
        SnippetController,
        EventsController,
        LiveEventsController,
        AlertsController,
        *plugin_routers(host.routes()),
        *dashboard_routes(),  # server-rendered pages (docs/dashboard.md)
        *demo_routes(),  # the demo shop, only under `segmently demo` (SEGMENTLY_DEMO=1)
    ]
    security = security_headers(settings.base_url)
    app = SegmentlyApp(
        route_handlers=route_handlers,
        dependencies={
            "db_session": Provide(provide_session),
            "actor": Provide(provide_actor),
            "kernel": Provide(provide_kernel, sync_to_thread=False),
        },
        exception_handlers={**EXCEPTION_HANDLERS, **VERSION_HANDLERS},
        template_config=dashboard_templates(host),
        guards=[access_guard],
        lifespan=[lifespan],
        middleware=[
            metrics.middleware,
            csrf_middleware(settings.secret_key, secure=settings.base_url.startswith("https")),
        ],
        plugins=[RateLimits.from_env(redis_url=settings.redis_url)],
        before_send=[security],
        # Brotli (quality 5: made per response) to clients that take it, else gzip
        compression_config=CompressionConfig(
            backend="brotli",
            brotli_gzip_fallback=True,
            minimum_size=1024,
            exclude_opt_key="no_compression",
            middleware_class=Compression,  # no coding the client refused (br;q=0)
        ),
        openapi_config=OpenAPIConfig(
            title="Segmently API",
            version=__version__,
            path="/schema",
            render_plugins=[ScalarRenderPlugin()],
        ),
        state=State(
            {
                "kernel": kernel,
                "config_cache": ConfigCache(),
                "snippet_files": SnippetFiles(settings.snippet_dir),
            }
        ),
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Content-Type",
                "X-API-Key",
                "Authorization",
                "If-None-Match",
                "If-Match",
                "Idempotency-Key",
                "X-Organization-Id",
                "X-Management-Key",
            ],
            expose_headers=["ETag", "Retry-After"],
            max_age=86400,
        ),
        logging_config=None,
        debug=False,
    )
    app.events_lane = EventsLane(app, app.framework, metrics=metrics, security=security)
    return app
