"""``segmently demo``: the snippet built, a seeded demo site, and the tiny shop it runs on.

- :func:`ensure_snippet` builds ``snippet/dist`` with npm when it is older than its sources;
- :func:`seed_demo` creates, once, an Enterprise organization with its owner, the site "Demo shop",
  a live A/B test of the shop's headline and CTA colour, and a feature flag, through the same
  services the API uses;
- :class:`DemoShopController` serves the shop at ``/demo/`` with the seeded site's snippet tag. The
  app mounts it only when ``SEGMENTLY_DEMO=1``, which ``segmently demo`` sets and ``serve`` never does.
"""

from __future__ import annotations

import contextlib
import html
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, MediaType, Response, get
from litestar.exceptions import NotFoundException
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.models import Membership, Site, User
from segmently.domain.accounts import schemas as account_schemas
from segmently.domain.accounts import services as accounts
from segmently.domain.accounts.auth import Actor
from segmently.domain.experiments import schemas as experiment_schemas
from segmently.domain.experiments import services as experiments
from segmently.domain.flags import schemas as flag_schemas
from segmently.domain.flags import services as flags
from segmently.domain.sites import schemas as site_schemas
from segmently.domain.sites import services as sites
from segmently.http.access import PUBLIC
from segmently.http.deps import DbSession
from segmently.http.protection import EMBEDDABLE_OPT
from segmently.kernel import Kernel
from segmently.tiers.guards import require_feature_for

DEMO_ENV = "SEGMENTLY_DEMO"
DEMO_EMAIL = "demo@segmently.local"
DEMO_PASSWORD = "segmently-demo"  # noqa: S105  (printed for the demo, not a secret)
DEMO_ORGANIZATION = "Segmently demo"
DEMO_SITE = "Demo shop"
DEMO_PLAN = "enterprise"  # every feature on
MIN_NODE = (20, 0)
BUILD_INPUTS = ("package.json", "package-lock.json", "build.mjs")
"""Files besides ``src/`` whose change means the snippet must be built again."""

HEADLINE_EXPERIMENT: dict[str, Any] = {
    "name": "Homepage headline",
    "hypothesis": "A headline naming the benefit and a warmer button get more visitors to buy.",
    "variants": [
        {"key": "control", "name": "Control", "weight": 50},
        {
            "key": "benefit-headline",
            "name": "Benefit headline",
            "weight": 50,
            "changes": [
                {
                    "type": "text",
                    "selector": "h1.hero-title",
                    "text": "Free delivery on everything, tomorrow",
                },
                {
                    "type": "css",
                    "selector": ".cta",
                    "css": "button.cta { background: #e4572e; border-color: #e4572e; }",
                },
            ],
        },
    ],
    "goals": [{"type": "click", "name": "Clicked Buy now", "selector": ".cta", "primary": True}],
}
NEW_CHECKOUT_FLAG: dict[str, Any] = {
    "key": "new-checkout",
    "name": "New checkout",
    "description": "The redesigned checkout, for half the visitors.",
    "status": "active",
    "rollout_percentage": 50,
}


def demo_mode() -> bool:
    """Whether this process serves the demo (``SEGMENTLY_DEMO=1``, set by ``segmently demo``)."""
    return os.environ.get(DEMO_ENV, "").strip() == "1"


def demo_routes() -> list[type[Controller]]:
    """The demo shop's routes when in demo mode, else none."""
    return [DemoShopController] if demo_mode() else []


# ------------------------------------------------------------------ snippet ---


def _newest_mtime(paths: Iterator[Path]) -> float:
    return max((p.stat().st_mtime for p in paths if p.is_file()), default=0.0)


def snippet_needs_build(root: Path) -> bool:
    """Whether ``root/dist/segmently.js`` is missing or older than a source, build or lock file."""
    core = root / "dist" / "segmently.js"
    if not core.is_file():
        return True
    inputs = [*(root / "src").rglob("*"), *(root / name for name in BUILD_INPUTS)]
    sources = _newest_mtime(iter(inputs))
    return core.stat().st_mtime < sources


def dependencies_need_install(root: Path) -> bool:
    """Whether ``root/node_modules`` is missing or older than ``package-lock.json``."""
    marker = root / "node_modules" / ".package-lock.json"  # npm rewrites it on every install
    lock = root / "package-lock.json"
    return not marker.is_file() or (lock.is_file() and marker.stat().st_mtime < lock.stat().st_mtime)


def _node_problem() -> str | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "Node.js and npm are not installed"
    try:
        version = subprocess.run(  # noqa: S603  (node found on PATH, fixed arguments)
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`node --version` failed ({exc})"
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < MIN_NODE:
        return f"Node.js {version or '(unknown version)'} is too old"
    return None


@contextlib.contextmanager
def _npm_lock(root: Path) -> Iterator[None]:
    # the same lock the tests take (tests/snippet/npm.py): one `npm ci` at a time in snippet/
    import fcntl  # POSIX only, like the server's SO_REUSEPORT sockets

    with (root / ".npm.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npm(root: Path, args: list[str], timeout: float, env: dict[str, str] | None = None) -> str | None:
    """Run ``npm *args`` in ``root``; None on success, else the end of its output."""
    npm = shutil.which("npm") or "npm"
    full_env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **(env or {})}
    try:
        r = subprocess.run(  # noqa: S603  (npm found on PATH, arguments of this module)
            [npm, *args], cwd=root, capture_output=True, text=True, timeout=timeout, check=False, env=full_env
        )
    except subprocess.TimeoutExpired:
        return f"npm {' '.join(args)} took more than {timeout:.0f} s"
    except OSError as exc:
        return f"npm {' '.join(args)} could not run: {exc}"
    if r.returncode == 0:
        return None
    tail = (r.stdout + r.stderr).strip().splitlines()[-20:]
    return f"npm {' '.join(args)} exited with {r.returncode}:\n" + "\n".join(tail)


def _install_build(root: Path, outdir: Path) -> None:
    """Move the files built into ``outdir`` over ``root/dist`` and drop chunks no longer built."""
    dist = root / "dist"
    built = {p.name for p in outdir.iterdir() if p.is_file()}
    for name in built:
        os.replace(outdir / name, dist / name)  # each file atomically: a running server reads old or new
    for stale in dist.iterdir():
        if stale.is_file() and stale.name not in built:
            stale.unlink()
    shutil.rmtree(outdir, ignore_errors=True)


def ensure_snippet(root: Path, console: Console) -> bool:
    """Build the snippet in ``root`` (``npm ci`` if needed, ``npm run build``) when it is stale.

    Returns whether ``dist/segmently.js`` is there afterwards. Never raises: when Node.js is
    missing or a step fails it prints a warning, and the server still starts (the snippet's
    URLs answer 503 until it is built). A failed build leaves the previous build in place.
    """
    if not snippet_needs_build(root):
        return True
    have_old = (root / "dist" / "segmently.js").is_file()
    problem = _node_problem()
    if problem is not None:
        console.print(
            f"[bold yellow]warning:[/] {problem}: the snippet cannot be built"
            + (" (serving the older build in snippet/dist)" if have_old else ", so it cannot be served")
            + " until Node.js 20 or later is installed (https://nodejs.org).",
            highlight=False,
            soft_wrap=True,
        )
        return have_old
    (root / "dist").mkdir(exist_ok=True)
    outdir = root / "dist" / f".build-{os.getpid()}"  # inside dist/: ignored by git, never served
    with _npm_lock(root):
        failure = None
        if dependencies_need_install(root):
            with console.status("Installing the snippet's build tools (npm ci in snippet/) …"):
                failure = _npm(root, ["ci", "--no-audit", "--no-fund"], timeout=600)
            if failure is None:
                console.print("[green]✓[/] installed the snippet's build tools (npm ci)")
        if failure is None:
            with console.status("Building the snippet (npm run build in snippet/) …"):
                failure = _npm(root, ["run", "build"], timeout=300, env={"SNIPPET_OUTDIR": str(outdir)})
        if failure is None and not (outdir / "segmently.js").is_file():
            failure = f"npm run build wrote no {outdir / 'segmently.js'}"
        if failure is None:
            _install_build(root, outdir)
            console.print(f"[green]✓[/] built the snippet into {root / 'dist'}", highlight=False)
            return True
    shutil.rmtree(outdir, ignore_errors=True)
    console.print(
        "[bold yellow]warning:[/] the snippet could not be built"
        + (" (serving the older build)" if have_old else ", so it cannot be served")
        + f": {failure}",
        highlight=False,
        soft_wrap=True,
    )
    return have_old


def ensure_dashboard_assets(web: Path, dist: Path, console: Console) -> bool:
    """Build the dashboard's front-end files (``web/`` → ``dist``) when missing or older than the lock.

    Returns whether htmx is there afterwards; like :func:`ensure_snippet` it never raises (the
    pages work without htmx, only less smoothly).
    """
    target = dist / "htmx.min.js"
    lock = web / "package-lock.json"
    if not lock.is_file() or (target.is_file() and target.stat().st_mtime >= lock.stat().st_mtime):
        return target.is_file()
    problem = _node_problem()
    failure = f"{problem}" if problem is not None else None
    if failure is None:
        with _npm_lock(web):
            if dependencies_need_install(web):
                with console.status("Installing the dashboard's front-end files (npm ci in web/) …"):
                    failure = _npm(web, ["ci", "--no-audit", "--no-fund"], timeout=600)
            if failure is None:
                failure = _npm(web, ["run", "build"], timeout=300, env={"DASHBOARD_ASSETS_OUTDIR": str(dist)})
    if failure is None and target.is_file():
        console.print(f"[green]✓[/] built the dashboard's front-end files into {dist}", highlight=False)
        return True
    console.print(
        f"[bold yellow]warning:[/] the dashboard's front-end files could not be built: {failure}; "
        "its pages work without htmx, only with full page loads.",
        highlight=False,
        soft_wrap=True,
    )
    return target.is_file()


# ------------------------------------------------------------------ seeding ---


class DemoSeed(msgspec.Struct, frozen=True):
    """What :func:`seed_demo` found or created."""

    created: bool
    organization_id: str
    site_id: str | None
    api_key: str | None


async def demo_site(session: AsyncSession) -> Site | None:
    """The demo owner's site "Demo shop", if it exists."""
    orgs = select(Membership.organization_id).join(User, User.id == Membership.user_id)
    orgs = orgs.where(User.email == DEMO_EMAIL, Membership.role == "owner")
    return await session.scalar(
        select(Site).where(Site.organization_id.in_(orgs), Site.name == DEMO_SITE).order_by(Site.created_at)
    )


async def seed_demo(kernel: Kernel, shop_url: str) -> DemoSeed:
    """Seed the demo once (the demo owner's account marks it done), in one transaction.

    On later runs nothing is created; the site's URL follows ``shop_url`` (another port).
    """
    async with kernel.db.session() as session:
        owner = await session.scalar(select(User).where(User.email == DEMO_EMAIL))
        if owner is not None:
            site = await demo_site(session)
            if site is not None and site.url != shop_url.rstrip("/"):
                patch = msgspec.convert({"url": shop_url}, site_schemas.ProjectPatch)
                await sites.update_site(session, site, patch)
            org_id = site.organization_id if site else owner.current_organization_id
            return DemoSeed(
                created=False,
                organization_id=org_id or "",
                site_id=site.id if site else None,
                api_key=site.api_key if site else None,
            )
        signup = {
            "email": DEMO_EMAIL,
            "password": DEMO_PASSWORD,
            "name": "Demo owner",
            "organization": DEMO_ORGANIZATION,
        }
        user, org = await accounts.signup(
            session, kernel.settings, msgspec.convert(signup, account_schemas.SignupIn), DEMO_PLAN
        )
        actor = Actor(user=user, organization=org, role="owner", via="token")
        project = msgspec.convert({"name": DEMO_SITE, "url": shop_url}, site_schemas.ProjectIn)
        site = await sites.create_site(session, actor, project)
        cfg = msgspec.convert(HEADLINE_EXPERIMENT, experiment_schemas.ExperimentIn)
        experiment, _ = await experiments.create(session, kernel, actor, site, cfg)
        await experiments.transition(session, kernel, actor, experiment, "start", None)
        await require_feature_for(kernel, org, "flags")
        await flags.create_flag(session, site, msgspec.convert(NEW_CHECKOUT_FLAG, flag_schemas.FlagIn))
        return DemoSeed(created=True, organization_id=org.id, site_id=site.id, api_key=site.api_key)


# ---------------------------------------------------------------- the shop ---

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Demo shop</title>
<script src="/s/{api_key}.js"></script>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1f2933; }}
header, main, footer {{ max-width: 46rem; margin: 0 auto; padding: 1rem 1.5rem; }}
header {{ display: flex; gap: 1.5rem; align-items: baseline; }}
header strong {{ margin-right: auto; }}
a {{ color: #2563eb; }}
.hero {{ padding: 3rem 0 2rem; }}
.hero-title {{ font-size: 2.4rem; line-height: 1.15; margin: 0 0 1rem; }}
.cta {{ font: inherit; font-weight: 600; color: #fff; background: #2563eb; border: 2px solid #2563eb;
  border-radius: .5rem; padding: .7rem 1.6rem; cursor: pointer; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: .5rem; border-bottom: 1px solid #e4e7eb; }}
footer {{ color: #616e7c; font-size: .875rem; border-top: 1px solid #e4e7eb; margin-top: 3rem; }}
</style>
</head>
<body>
<header><strong>Demo shop</strong><a href="/demo/">Home</a><a href="/demo/pricing">Pricing</a></header>
<main>
{body}
</main>
<footer>
This is the Segmently demo shop. The live experiment <em>Homepage headline</em> shows half the
visitors another headline and button colour; a private window is a new visitor. Sign in to the API
as {email} (password {password}) to see the results.
</footer>
</body>
</html>
"""
_HOME = """<section class="hero">
<h1 class="hero-title">The shop for things you did not know you needed</h1>
<p>Hand-picked goods, shipped from our workshop.</p>
<form action="/demo/checkout/success" method="get"><button class="cta" type="submit">Buy now</button></form>
</section>"""
_PRICING = """<h1>Pricing</h1>
<table>
<tr><th>Box</th><th>Contents</th><th>Price</th></tr>
<tr><td>Small</td><td>3 surprises</td><td>€19</td></tr>
<tr><td>Medium</td><td>6 surprises</td><td>€34</td></tr>
<tr><td>Large</td><td>12 surprises</td><td>€59</td></tr>
</table>"""
_SUCCESS = """<h1>Thank you for your order</h1>
<p>Your box is on its way. <a href="/demo/">Back to the shop</a></p>"""


class DemoShopController(Controller):
    """The demo shop: HTML pages with the demo site's snippet tag (same origin, no inline script)."""

    path = "/demo"
    include_in_schema = False
    opt = {**PUBLIC, EMBEDDABLE_OPT: True}  # the visual editor frames the shop, as it frames customer sites

    @get("/", operation_id="demoHome")
    async def home(self, db_session: DbSession) -> Response[str]:
        """The home page: the headline and the button the experiment changes."""
        return await _page(db_session, "Home", _HOME)

    @get("/pricing", operation_id="demoPricing")
    async def pricing(self, db_session: DbSession) -> Response[str]:
        """A second page, for page views and navigation."""
        return await _page(db_session, "Pricing", _PRICING)

    @get("/checkout/success", operation_id="demoCheckoutSuccess")
    async def checkout_success(self, db_session: DbSession) -> Response[str]:
        """Where the Buy now button leads."""
        return await _page(db_session, "Order placed", _SUCCESS)


async def _page(session: AsyncSession, title: str, body: str) -> Response[str]:
    site = await demo_site(session)
    if site is None:
        raise NotFoundException("There is no demo site (any more): run `segmently demo` with a new data dir")
    text = _PAGE.format(
        title=html.escape(title),
        api_key=html.escape(site.api_key),
        body=body,
        email=DEMO_EMAIL,
        password=DEMO_PASSWORD,
    )
    return Response(text, media_type=MediaType.HTML, headers={"Cache-Control": "no-store"})
