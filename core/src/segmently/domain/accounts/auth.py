"""Who is making a request, in which organization, with which role.

Every authenticated request is checked against the database: a deleted user or a
revoked token is refused with 401, a suspended user, membership or organization
with 403.

The two kinds of credentials are kept apart by path:

- ``/api/v1/manage/…`` (the Management API) takes a management key (``seg_mgmt_…``) and
  nothing else: a session token or cookie there is a 401. The key's organization must be
  active (403) and its plan must include the Management API, asked anew on every request
  (402, so a downgrade from Enterprise takes effect at once).
- Everything else takes session tokens only: a management key there is a 403.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import ManagementKey, Membership, Organization, User
from segmently.domain.accounts.security import read_token, sha256

Role = Literal["owner", "admin", "member"]
ROLE_RANK: dict[str, int] = {"member": 1, "admin": 2, "owner": 3}
SESSION_COOKIE = "segmently_session"
_STATE_KEY = "segmently_actor"
MANAGE_PREFIX = "/api/v1/manage"
LAST_USED_EVERY = dt.timedelta(seconds=60)
"""``last_used_at`` is written at most this often per key (every write locks SQLite whole)."""
KEY_OUTSIDE_MANAGE = "Management keys work only with the Management API (/api/v1/manage/…)"
MANAGE_NEEDS_KEY = "The Management API needs a management key (seg_mgmt_…)"


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller.

    Attributes:
        user: The signed-in user; None for a management key.
        organization: The organization the request acts in.
        role: The caller's role there. A management key is accepted on the Management API
            (``/api/v1/manage/…``) only, and has the admin role there; on every other path
            it is refused with 403 before an Actor is made.
        via: How the caller authenticated.
    """

    user: User | None
    organization: Organization
    role: Role
    via: Literal["token", "management_key"]

    @property
    def organization_id(self) -> str:
        """The id every query of this request is scoped by."""
        return self.organization.id

    def require(self, role: Role, action: str = "do this") -> None:
        """Raise 403 unless the caller's role is at least ``role``."""
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            needed = "the owner" if role == "owner" else f"an {role}" if role == "admin" else "a member"
            raise PermissionDeniedException(f"Only {needed} of the organization can {action}")

    def require_user(self) -> User:
        """The signed-in user; 403 for management keys, which act for no person."""
        if self.user is None:
            raise PermissionDeniedException("This endpoint needs a signed-in user, not a management key")
        return self.user


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return connection.cookies.get(SESSION_COOKIE)


def is_management_path(path: str) -> bool:
    """Whether ``path`` belongs to the Management API (``/api/v1/manage`` and below)."""
    return path == MANAGE_PREFIX or path.startswith(MANAGE_PREFIX + "/")


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], session: AsyncSession) -> Actor:
    """Resolve (once per request) and return the caller; raises 401/402/403 as the contract says.

    A management key is accepted under ``/api/v1/manage/`` only (403 elsewhere, before the
    key is even looked up); there, nothing but a management key is (401).
    """
    cached = connection.scope.get("state", {}).get(_STATE_KEY)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = _bearer(connection)
    mgmt = connection.headers.get("x-management-key") or (
        token if token and token.startswith("seg_mgmt_") else None
    )
    if is_management_path(connection.scope["path"]):
        if not mgmt:
            raise NotAuthorizedException(MANAGE_NEEDS_KEY)
        actor = await _management_key_actor(connection, session, mgmt)
    elif mgmt:
        raise PermissionDeniedException(KEY_OUTSIDE_MANAGE)
    elif token:
        actor = await _token_actor(connection, session, token)
    else:
        raise NotAuthorizedException("Authentication required: send Authorization: Bearer <token>")
    connection.scope.setdefault("state", {})[_STATE_KEY] = actor
    return actor


async def _token_actor(
    connection: ASGIConnection[Any, Any, Any, Any], session: AsyncSession, token: str
) -> Actor:
    secret = connection.app.state.kernel.settings.secret_key
    claims = read_token(secret, token)
    if claims is None:
        raise NotAuthorizedException("Invalid or expired token: sign in again")
    user = await session.get(User, claims["sub"])
    if user is None or user.status == "deleted" or user.token_version != claims["tv"]:
        raise NotAuthorizedException("This token is no longer valid: sign in again")
    if user.status == "suspended":
        raise PermissionDeniedException("Your account is suspended")
    wanted = connection.headers.get("x-organization-id") or user.current_organization_id
    if not wanted:
        raise PermissionDeniedException("You do not belong to any organization")
    row = (
        await session.execute(
            select(Membership, Organization)
            .join(Organization, Organization.id == Membership.organization_id)
            .where(Membership.user_id == user.id, Membership.organization_id == wanted)
        )
    ).first()
    if row is None:
        raise PermissionDeniedException("You are not a member of this organization")
    membership, organization = row
    if organization.status != "active":
        raise PermissionDeniedException(f"The organization {organization.name} is suspended")
    if membership.status != "active":
        raise PermissionDeniedException(f"Your membership in {organization.name} is suspended")
    role: Role = membership.role  # type: ignore[assignment]
    return Actor(user=user, organization=organization, role=role, via="token")


async def _management_key_actor(
    connection: ASGIConnection[Any, Any, Any, Any], session: AsyncSession, key: str
) -> Actor:
    row = (
        await session.execute(
            select(ManagementKey, Organization)
            .join(Organization, Organization.id == ManagementKey.organization_id)
            .where(ManagementKey.key_hash == sha256(key))
        )
    ).first()
    if row is None or row[0].revoked_at is not None:
        raise NotAuthorizedException("Unknown or revoked management key")
    mkey, organization = row
    if organization.status != "active":
        raise PermissionDeniedException(f"The organization {organization.name} is suspended")
    # Imported here: tiers.guards imports the kernel, which imports modules that import this one.
    from segmently.tiers.guards import require_feature_for

    await require_feature_for(connection.app.state.kernel, organization, "api.management")
    now = utcnow()
    if mkey.last_used_at is None or now - mkey.last_used_at >= LAST_USED_EVERY:
        # Written only when stale: on SQLite every write takes the database-wide lock.
        await session.execute(
            update(ManagementKey)
            .where(
                ManagementKey.id == mkey.id,
                or_(
                    ManagementKey.last_used_at.is_(None),
                    ManagementKey.last_used_at <= now - LAST_USED_EVERY,
                ),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return Actor(user=None, organization=organization, role="admin", via="management_key")
