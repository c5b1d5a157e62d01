"""``/api/v1/experiments/{id}/results`` (and its export) and ``/api/v1/analytics/overview``."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.params import FromPath, QueryParameter

from segmently.domain.analytics import export, schemas
from segmently.domain.analytics.overview import Order, Range, Sort, Status, overview
from segmently.domain.analytics.results import experiment_results
from segmently.http.deps import CurrentActor, DbSession

ExportFormat = Annotated[
    Literal["csv", "json"], QueryParameter(name="format", description="`csv` (default) or `json`")
]


class ResultsController(Controller):
    """An experiment's results, for everyone in its organization."""

    path = "/api/v1/experiments/{experiment_id:str}/results"
    tags = ["analytics"]

    @get("/", operation_id="getExperimentResults")
    async def get_results(
        self, experiment_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> schemas.ResultsOut:
        """Per-variant figures and statistics vs control, the winner, goals, funnels and timeline."""
        return await experiment_results(db_session, actor, experiment_id)

    @get("/export", operation_id="exportExperimentResults")
    async def export_results(
        self,
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        export_format: ExportFormat = "csv",
    ) -> Response[bytes]:
        """The variant summary and the daily timeline as a CSV or JSON download."""
        results = await experiment_results(db_session, actor, experiment_id)
        body = export.to_csv(results) if export_format == "csv" else export.to_json(results)
        media = "text/csv; charset=utf-8" if export_format == "csv" else "application/json"
        filename = f"{results.slug}-results.{export_format}"
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


class AnalyticsController(Controller):
    """The organization's analytics across sites."""

    path = "/api/v1/analytics"
    tags = ["analytics"]

    @get("/overview", operation_id="getAnalyticsOverview")
    async def get_overview(
        self,
        actor: CurrentActor,
        db_session: DbSession,
        site_id: Annotated[str | None, QueryParameter(description="Only this site's experiments")] = None,
        status: Annotated[Status | None, QueryParameter(description="`active` is `live`")] = None,
        time_range: Annotated[Range, QueryParameter(name="range", description="Activity window")] = "all",
        sort: Annotated[Sort, QueryParameter(description="Sort key")] = "date",
        order: Annotated[Order, QueryParameter(description="`desc` (default) or `asc`")] = "desc",
    ) -> schemas.OverviewOut:
        """Every experiment of the organization with visitors, conversions and rate; status counts."""
        return await overview(
            db_session,
            actor,
            site_id=site_id,
            status=status,
            time_range=time_range,
            sort=sort,
            order=order,
        )
