"""Names of the dependencies the kernel injects into handlers (kernel and plugin alike)."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.domain.accounts.auth import Actor, authenticate
from segmently.kernel import Kernel

DbSession: TypeAlias = NamedDependency[AsyncSession]
"""A session committed before the response is sent; declare it as ``db_session: DbSession``."""

CurrentActor: TypeAlias = NamedDependency[Actor]
"""The authenticated caller; declaring ``actor: CurrentActor`` makes a route require sign-in."""

KernelState: TypeAlias = NamedDependency[Kernel]
"""Settings, database, plugins and plans of this app (``kernel: KernelState``)."""


async def provide_actor(request: Request[Any, Any, Any], db_session: DbSession) -> Actor:
    """The caller of this request (401/403 when there is none or it is refused)."""
    return await authenticate(request, db_session)


def provide_kernel(request: Request[Any, Any, Any]) -> Kernel:
    """The app's kernel state."""
    kernel: Kernel = request.app.state.kernel
    return kernel
