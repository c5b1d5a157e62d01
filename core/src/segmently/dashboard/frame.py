"""What every dashboard page shares: templates, assets, the page frame, the session cookie.

A signed-in page renders inside the frame (``base.html``): the header with the organization
switcher, the alert bell and the user menu, and the navigation with the plugins' entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.domain.accounts import services
from segmently.domain.accounts.auth import SESSION_COOKIE, Actor
from segmently.domain.alerts import services as alert_services
from segmently.hookspecs import NavItem
from segmently.http.protection import CSRF_COOKIE
from segmently.kernel import Kernel
from segmently.plugins.host import PluginHost
from segmently.tiers.guards import org_ref, plan_of
from segmently.tiers.plans import plan_title

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_PATH = "/static/dashboard"
SESSION_MAX_AGE = int(dt.timedelta(days=30).total_seconds())  # the token's own lifetime
HOME = "/sites"
R = TypeVar("R", bound=Response[Any])

KERNEL_NAV: tuple[tuple[str, str, str], ...] = (
    ("sites", "Sites", "/sites"),
    ("analytics", "Analytics", "/analytics"),
    ("alerts", "Alerts", "/alerts"),
    ("settings", "Settings", "/settings"),
    ("api-keys", "API keys", "/api-keys"),
)


def asset_urls(static: Path = STATIC) -> dict[str, str | None]:
    """URLs of the stylesheet, htmx and ``dashboard.js``, each with a content hash that busts caches.

    htmx is None while ``web/`` has not been built: pages then work without it (plain
    links and form posts), the bell's panel is the Alerts page.
    """

    def url(name: str) -> str | None:
        path = static / name
        if not path.is_file():
            return None
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return f"{STATIC_PATH}/{name}?v={digest}"

    return {"css": url("dashboard.css"), "htmx": url("dist/htmx.min.js"), "js": url("dashboard.js")}


def static_url(name: str) -> str:
    """The URL of a file of ``static/`` (a page's own script or stylesheet), with a content hash."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"{STATIC_PATH}/{name}?v={digest}"


def dashboard_templates(plugins: PluginHost) -> TemplateConfig[JinjaTemplateEngine]:
    """Litestar's template config: the dashboard's templates first, then the plugins' directories."""
    if not (STATIC / "dist" / "htmx.min.js").is_file():
        log.warning(
            "dashboard assets are not built (npm ci && npm run build in web/): serving pages without htmx"
        )
    env = Environment(
        loader=FileSystemLoader([TEMPLATES, *plugins.template_dirs()]),
        autoescape=True,
        undefined=StrictUndefined,
    )
    env.globals["assets"] = asset_urls()
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


def csrf_token(request: Request[Any, Any, Any]) -> str:
    """The token a form must echo in ``_csrf_token`` (or htmx in ``X-CSRF-Token``)."""
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) and token else request.cookies.get(CSRF_COOKIE, "")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//evil`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if "\\" in target or any(c <= " " or c == "\x7f" for c in target):
        return HOME  # browsers drop tabs and newlines and read \ as /: "/\t/evil" would be "//evil"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


def login_url(target: str | None = None, email: str | None = None) -> str:
    """``/login`` with ``next`` (and the email to pre-fill) when given."""
    query = []
    if email:
        query.append(f"email={quote(email, safe='')}")
    if target and target != HOME:
        query.append(f"next={quote(target, safe='/')}")
    return "/login" + ("?" + "&".join(query) if query else "")


def signed_in(response: R, kernel: Kernel, token: str) -> R:
    """Set the session cookie: HttpOnly, SameSite=Lax, Secure when the server is on https."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=kernel.settings.base_url.startswith("https"),
    )
    return response


def signed_out(response: R) -> R:
    """Drop the session cookie."""
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def redirect(path: str) -> Redirect:
    """A 303 to ``path`` (the browser follows it with GET, so a reload never re-posts)."""
    return Redirect(path, status_code=303)


def render(
    request: Request[Any, Any, Any], template: str, status_code: int = 200, **context: Any
) -> Template:
    """A page outside the frame (sign-in, sign-up, errors)."""
    return Template(
        template_name=template,
        context={"csrf_token": csrf_token(request), **context},
        status_code=status_code,
    )


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of the navigation; ``locked`` when the plan lacks its feature (an upgrade prompt)."""

    key: str
    label: str
    href: str
    locked: bool = False


async def navigation(kernel: Kernel, actor: Actor, plan: str) -> list[Link]:
    """The kernel's pages, then the plugins' entries for this organization."""
    links = [Link(key, label, href) for key, label, href in KERNEL_NAV]
    try:
        items: list[NavItem] = await kernel.plugins.dashboard_nav(org_ref(actor.organization))
    except Exception:  # one broken plugin must not take every page down
        log.exception("register_dashboard_nav failed for organization %s", actor.organization_id)
        items = []
    for item in items:
        locked = False
        if item.feature:
            try:
                locked = not kernel.plans.includes(plan, item.feature)  # type: ignore[arg-type]
            except KeyError:
                locked = True
        links.append(Link(f"plugin:{item.href}", item.label, item.href, locked))
    return links


async def frame(
    request: Request[Any, Any, Any],
    actor: Actor,
    session: AsyncSession,
    kernel: Kernel,
    active: str,
) -> dict[str, Any]:
    """The context ``base.html`` needs: user, organizations, navigation, plan, unread alerts."""
    user = actor.require_user()
    plan = await plan_of(kernel, actor.organization)
    return {
        "csrf_token": csrf_token(request),
        "user": user,
        "organization": actor.organization,
        "role": actor.role,
        "organizations": await services.memberships(session, user.id),
        "nav": await navigation(kernel, actor, plan),
        "active": active,
        "plan": plan,
        "plan_title": plan_title(plan),
        "unread": await alert_services.unread_count(session, actor.organization_id),
    }


async def page(
    request: Request[Any, Any, Any],
    template: str,
    actor: Actor,
    session: AsyncSession,
    kernel: Kernel,
    active: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A signed-in page inside the frame."""
    base = await frame(request, actor, session, kernel, active)
    return Template(template_name=template, context={**base, **context}, status_code=status_code)
