"""Editing safely: ``Idempotency-Key`` replays for creates, ``If-Match`` version checks for updates.

Creates: a client that is unsure whether its create went through sends it again with the
same ``Idempotency-Key`` header and gets the first answer back instead of a second object.
The first answer is stored with a fingerprint of the request (method, path, body) in the
same transaction as the object, so the two exist together or not at all. Routes use
:class:`IdempotentCreate`, which strings the pieces below together::

    idem = IdempotentCreate(header)  # 400 on a malformed key, before any other check
    ...tenancy, plan checks...
    status, out = await idem.run(session, org_id, request, data, create=make_it, replay=load_stored)

Updates: objects carry a ``version``; responses send it as ``ETag: "<version>"``, and an
update whose ``If-Match`` names another version is refused with 412 and the current
version (:func:`check_if_match`) instead of overwriting someone else's change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_201_CREATED
from litestar.types import ExceptionHandlersMap
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import IdempotentRequest
from segmently.http.errors import field_error

IDEMPOTENCY_HEADER = "Idempotency-Key"
IF_MATCH = "If-Match"
MAX_KEY_LENGTH = 200
KEY_REUSED = "Idempotency-Key reused with a different request"
KEY_IN_FLIGHT = "A request with this Idempotency-Key is still being processed; send it again in a moment"

T = TypeVar("T")


class IdempotencyKeyReused(HTTPException):
    """422: the key was used before for a request with another method, path or body."""

    status_code = 422


class IdempotencyKeyInFlight(HTTPException):
    """409: a concurrent request with the same key won the race; a retry gets its answer."""

    status_code = 409


class PreconditionFailed(HTTPException):
    """412: the object changed since the client read it; carries the current version."""

    status_code = 412

    def __init__(self, current_version: int, what: str = "This object") -> None:
        super().__init__(
            detail=f"{what} was changed by someone else (now version {current_version}); "
            "reload it and apply your change again",
            extra={"current_version": current_version},
        )
        self.current_version = current_version


class PreconditionFailedBody(msgspec.Struct, kw_only=True):
    """The error shape of every response plus the version the client should reload."""

    status_code: int
    detail: str
    errors: list[Any] = []
    current_version: int


def precondition_failed_response(
    request: Request[Any, Any, Any], exc: PreconditionFailed
) -> Response[PreconditionFailedBody]:
    """Render a 412 with ``current_version`` and the current ``ETag``."""
    body = PreconditionFailedBody(
        status_code=exc.status_code, detail=exc.detail, current_version=exc.current_version
    )
    return Response(body, status_code=exc.status_code, headers={"ETag": etag(exc.current_version)})


VERSION_HANDLERS: ExceptionHandlersMap = {PreconditionFailed: precondition_failed_response}
"""Exception handlers for a controller whose routes raise :class:`PreconditionFailed`."""


# --------------------------------------------------------------------------- If-Match ---


def etag(version: int) -> str:
    """The ``ETag`` value of a version: ``"3"`` (quotes included)."""
    return f'"{version}"'


def parse_if_match(header: str | None) -> set[int] | None:
    """The versions an ``If-Match`` header accepts; None when any version will do.

    Accepts ``3``, ``"3"``, ``W/"3"``, lists of those separated by commas, and ``*``.

    Raises:
        ValidationException: 400 on ``If-Match`` when a value is not a version number.
    """
    if header is None or not header.strip():
        return None
    versions: set[int] = set()
    for raw in header.split(","):
        tag = raw.strip()
        if tag == "*":
            return None
        value = tag.removeprefix("W/").strip().strip('"')
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise field_error(IF_MATCH, f"{tag!r} is not a version; send the ETag the API returned")
        versions.add(int(value))
    return versions


def check_if_match(header: str | None, current_version: int, what: str = "This object") -> None:
    """412 with ``current_version`` unless ``If-Match`` is absent, ``*`` or names the current version.

    Raises:
        PreconditionFailed: The client's copy is stale.
        ValidationException: The header is not made of versions.
    """
    wanted = parse_if_match(header)
    if wanted is not None and current_version not in wanted:
        raise PreconditionFailed(current_version, what)


# ---------------------------------------------------------------------- Idempotency ---


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header, checked; None when the request has none.

    Raises:
        ValidationException: 400 on ``Idempotency-Key`` when it is blank or too long.
    """
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise field_error(IDEMPOTENCY_HEADER, f"must be 1–{MAX_KEY_LENGTH} printable characters")
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 of method, path and body; the body as canonical JSON, so formatting does not count.

    Args:
        method: The HTTP method.
        path: The request path (ids of the parent object included).
        body: The decoded body (a msgspec Struct, dict, list… or None).
    """
    canonical = msgspec.json.encode([method.upper(), path, msgspec.to_builtins(body)], order="sorted")
    return hashlib.sha256(canonical).hexdigest()


async def replay_or_none(
    session: AsyncSession, org_id: str, key: str, fingerprint: str
) -> tuple[int, dict[str, Any]] | None:
    """The stored first answer ``(status_code, body)`` to this key, or None if the key is new.

    Raises:
        IdempotencyKeyReused: 422 when the key was used for a different request.
    """
    row = await session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.organization_id == org_id, IdempotentRequest.key == key
        )
    )
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            detail=KEY_REUSED, extra=[{"key": IDEMPOTENCY_HEADER, "message": KEY_REUSED}]
        )
    return row.status_code, dict(row.response)


def remember(
    session: AsyncSession,
    org_id: str,
    key: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
) -> None:
    """Store the answer to replay for this key, in the transaction that made the object.

    A concurrent request with the same key makes the insert fail on the unique
    ``(organization_id, key)``; call :func:`flush_remembered` to turn that into a 409.
    """
    session.add(
        IdempotentRequest(
            organization_id=org_id,
            key=key,
            fingerprint=fingerprint,
            status_code=status,
            response=body,
            created_at=utcnow(),
        )
    )


async def flush_remembered(session: AsyncSession) -> None:
    """Flush after :func:`remember` (with the object already flushed).

    Raises:
        IdempotencyKeyInFlight: 409 when a concurrent request stored the same key first.
    """
    try:
        await session.flush()
    except IntegrityError:
        raise IdempotencyKeyInFlight(detail=KEY_IN_FLIGHT) from None


class IdempotentCreate:
    """One create route's ``Idempotency-Key`` handling: replay the first answer or create and remember.

    Construct it first (the key is checked then, so a malformed one is a 400 before anything
    else), do the route's own checks, then :meth:`run` the create.
    """

    def __init__(self, header: str | None) -> None:
        """Check the raw ``Idempotency-Key`` header.

        Raises:
            ValidationException: 400 on ``Idempotency-Key`` when it is blank or too long.
        """
        self.key = idempotency_key(header)

    async def run(
        self,
        session: AsyncSession,
        org_id: str,
        request: Request[Any, Any, Any],
        data: Any,
        create: Callable[[], Awaitable[T]],
        replay: Callable[[dict[str, Any]], T],
        status: int = HTTP_201_CREATED,
    ) -> tuple[int, T]:
        """``(status, object)``: the stored first answer to this key, or ``create()``'s new object.

        Args:
            session: The request's session; the answer is stored in its transaction.
            org_id: The organization the key belongs to.
            request: The request (its method and path go into the fingerprint).
            data: The decoded request body.
            create: Makes and flushes the object, returning the response body (a msgspec Struct).
            replay: Turns a stored body back into the response object.
            status: The status code of a fresh create.

        Raises:
            IdempotencyKeyReused: 422 when the key was used for a different request.
            IdempotencyKeyInFlight: 409 when a concurrent request stored the same key first.
        """
        fp = fingerprint(request.method, request.url.path, data)
        if self.key is not None and (stored := await replay_or_none(session, org_id, self.key, fp)):
            stored_status, body = stored
            return stored_status, replay(body)
        out = await create()
        if self.key is not None:
            remember(session, org_id, self.key, fp, status, msgspec.to_builtins(out))
            await flush_remembered(session)
        return status, out
