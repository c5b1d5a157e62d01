"""``/api/v1/alerts``: the notification center (alert bell) of the caller's organization."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from segmently.db.models import Alert
from segmently.domain.alerts import services
from segmently.http.deps import CurrentActor, DbSession

MAX_ALERTS = 200


class AlertOut(msgspec.Struct):
    """One alert; ``link`` opens the experiment's results."""

    id: str
    alert_type: str
    message: str
    read: bool
    created_at: dt.datetime
    experiment_id: str | None
    link: str | None
    data: dict[str, object]


class AlertsOut(msgspec.Struct):
    """The bell: how many are unread, and the newest alerts first."""

    unread: int
    alerts: list[AlertOut]


class ReadOut(msgspec.Struct):
    """How many alerts a mark-read call changed, and how many stay unread."""

    marked: int
    unread: int


def alert_out(a: Alert) -> AlertOut:
    """The API view of an alert."""
    return AlertOut(
        id=a.id,
        alert_type=a.alert_type,
        message=a.message,
        read=a.read,
        created_at=a.created_at,
        experiment_id=a.experiment_id,
        link=f"/experiments/{a.experiment_id}/results" if a.experiment_id else None,
        data=a.data,
    )


class AlertsController(Controller):
    """Alerts of the caller's organization; every member sees and reads them."""

    path = "/api/v1/alerts"
    tags = ["alerts"]

    @get("/", operation_id="listAlerts")
    async def list_alerts(
        self,
        actor: CurrentActor,
        db_session: DbSession,
        limit: FromQuery[Annotated[int, msgspec.Meta(ge=1, le=MAX_ALERTS)]] = 50,
        unread_only: FromQuery[bool] = False,
    ) -> AlertsOut:
        """Newest first, with the unread count for the badge."""
        query = select(Alert).where(Alert.organization_id == actor.organization_id)
        if unread_only:
            query = query.where(Alert.read.is_(False))
        rows = (
            await db_session.scalars(query.order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit))
        ).all()
        unread = await services.unread_count(db_session, actor.organization_id)
        return AlertsOut(unread=unread, alerts=[alert_out(a) for a in rows])

    @post("/{alert_id:str}/read", operation_id="markAlertRead", status_code=200)
    async def mark_read(self, alert_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> ReadOut:
        """Mark one alert read (another organization's alert is 404)."""
        await services.mark_read(db_session, actor.organization_id, alert_id)
        return ReadOut(marked=1, unread=await services.unread_count(db_session, actor.organization_id))

    @post("/read-all", operation_id="markAllAlertsRead", status_code=200)
    async def mark_all_read(self, actor: CurrentActor, db_session: DbSession) -> ReadOut:
        """Mark every alert of the organization read."""
        return ReadOut(marked=await services.mark_all_read(db_session, actor.organization_id), unread=0)
