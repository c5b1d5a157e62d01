"""Names of the dependencies the kernel injects into handlers (kernel and plugin alike)."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

DbSession: TypeAlias = NamedDependency[AsyncSession]
"""A session committed before the response is sent; declare it as ``db_session: DbSession``."""
