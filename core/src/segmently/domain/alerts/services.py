"""Reading an organization's alerts: the unread count, marking one or all read (API and dashboard)."""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.models import Alert


async def unread_count(session: AsyncSession, organization_id: str) -> int:
    """How many alerts of the organization nobody has read (the bell's badge)."""
    return int(
        await session.scalar(
            select(func.count()).where(Alert.organization_id == organization_id, Alert.read.is_(False))
        )
        or 0
    )


async def mark_read(session: AsyncSession, organization_id: str, alert_id: str) -> None:
    """Mark one alert read; 404 for an alert of another organization (or none)."""
    result = await session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.organization_id == organization_id)
        .values(read=True)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFoundException("No such alert")


async def mark_all_read(session: AsyncSession, organization_id: str) -> int:
    """Mark every alert of the organization read; how many were unread."""
    result = await session.execute(
        update(Alert)
        .where(Alert.organization_id == organization_id, Alert.read.is_(False))
        .values(read=True)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
