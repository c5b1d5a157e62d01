"""Who may reach a route, decided before anything else is read from the request.

Every route requires a signed-in caller unless it says otherwise with
``opt={"access": "site"}`` (a site's public API key) or ``opt={"access": "public"}``;
``opt={"role": "admin"}`` (or ``"owner"``) raises the role a signed-in caller needs.
The check runs as an app-wide guard, before the body is parsed, so an anonymous
caller learns nothing but 401, and a route added later is protected by default.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import ImproperlyConfiguredException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from segmently.domain.accounts.auth import ROLE_RANK, authenticate
from segmently.domain.sites.keys import SiteKey, key_from
from segmently.kernel import Kernel

ACCESS_OPT = "access"
ROLE_OPT = "role"  # the lowest role a signed-in caller needs: "member" (default), "admin" or "owner"
ACCESS_VALUES = ("user", "site", "public")
PUBLIC: dict[str, Any] = {ACCESS_OPT: "public"}
SITE: dict[str, Any] = {ACCESS_OPT: "site"}
ADMIN: dict[str, Any] = {ROLE_OPT: "admin"}
OWNER: dict[str, Any] = {ROLE_OPT: "owner"}
_SITE_STATE = "segmently_site"


def access_of(handler: BaseRouteHandler) -> str:
    """The route's access rule; Litestar's own routes (the OpenAPI schema) are public."""
    if handler.fn.__module__.startswith("litestar."):
        return "public"
    access = str(handler.opt.get(ACCESS_OPT, "user"))
    if access not in ACCESS_VALUES:
        raise ImproperlyConfiguredException(f"{handler}: opt access must be one of {ACCESS_VALUES}")
    return access


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """401/403 unless the caller passes the route's access rule; the answer is kept for the handler."""
    access = access_of(handler)
    if access == "public":
        return
    kernel: Kernel = connection.app.state.kernel
    if access == "site":
        site = await kernel.site_keys.require(key_from(connection))
        connection.scope.setdefault("state", {})[_SITE_STATE] = site
        return
    async with kernel.db.session() as session:
        actor = await authenticate(connection, session)
    role = handler.opt.get(ROLE_OPT, "member")
    if ROLE_RANK[actor.role] < ROLE_RANK[role]:
        raise PermissionDeniedException(
            f"Only {'the owner' if role == 'owner' else 'an admin'} of {actor.organization.name} can do this"
        )


def current_site(connection: ASGIConnection[Any, Any, Any, Any]) -> SiteKey:
    """The site whose key a ``site`` route was called with (set by :func:`access_guard`)."""
    site: SiteKey = connection.scope["state"][_SITE_STATE]
    return site
