"""Names of the dependencies the kernel injects into handlers (kernel and plugin alike)."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.params import HeaderParameter
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.domain.accounts.auth import Actor, authenticate
from segmently.kernel import Kernel

IfMatch: TypeAlias = Annotated[
    str | None,
    HeaderParameter(name="If-Match", description='The ETag you read (`"3"`); 412 if it changed since'),
]
"""The version a client last read (``If-Match: "3"``); a stale one gets 412."""

IdempotencyKey: TypeAlias = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key", description="Repeat a create safely: the first answer is returned"
    ),
]
"""A client's key that makes a create safe to retry."""

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
