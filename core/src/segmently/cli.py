"""The ``segmently`` command: serve, demo, migrate, plugins, db, orgs, users, visitors, purge, jobs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table

from segmently.settings import Settings, SettingsError

if TYPE_CHECKING:
    from segmently.kernel import Kernel
    from segmently.plugins import PluginHost

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
err = Console(stderr=True)
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers content


def _needs_settings(func: F) -> F:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from segmently.logs import configure_logging

        settings = _settings()
        configure_logging(settings.log_level)
        return func(settings, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="segmently")
def main() -> None:
    """Segmently: self-hosted A/B testing, feature flags and analytics."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (each on its own SO_REUSEPORT socket).",
)
@_needs_settings
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the API, dashboard and snippet."""
    _check_migrated(settings)
    from segmently.server import serve as run

    sys.exit(run(host, port, workers, settings.log_level))


@main.command()
@_needs_settings
def migrate(settings: Settings) -> None:
    """Upgrade the database (kernel and every enabled plugin) to the newest schema."""
    from segmently.db.migrate import upgrade
    from segmently.plugins import PluginHost

    host = PluginHost.load(settings.disabled_plugins)
    host.models()
    changed = upgrade(settings.database_url, host)
    click.echo(f"migrated: {', '.join(changed)}" if changed else "database already up to date")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def demo(ctx: click.Context, host: str, port: int) -> None:
    """Build the snippet, migrate, seed a demo site with a live experiment, and serve it with a demo shop."""
    import os

    from segmently.dashboard.frame import STATIC
    from segmently.demo import (
        DEMO_EMAIL,
        DEMO_ENV,
        DEMO_PASSWORD,
        DemoSeed,
        ensure_dashboard_assets,
        ensure_snippet,
        seed_demo,
    )
    from segmently.settings import SNIPPET_DIST

    settings = _settings()
    out = Console(highlight=False, soft_wrap=True)
    if settings.snippet_dir == SNIPPET_DIST:  # a SEGMENTLY_SNIPPET_DIR of one's own is left alone
        ensure_snippet(SNIPPET_DIST.parent, out)
        ensure_dashboard_assets(SNIPPET_DIST.parents[1] / "web", STATIC / "dist", out)
    ctx.invoke(migrate)
    base = f"http://{host}:{port}"

    async def seed(kernel: Kernel) -> DemoSeed:
        return await seed_demo(kernel, f"{base}/demo/")

    seeded = _with_kernel(settings, seed)
    done = "Seeded" if seeded.created else "Found"
    out.print(f"{done} the demo organization (Enterprise plan) in {settings.data_dir}")
    out.print(f"  sign in:    {DEMO_EMAIL} / {DEMO_PASSWORD}  (the dashboard: {base}/login)")
    out.print(f'  demo shop:  {base}/demo/  (the live experiment "Homepage headline")')
    out.print(f"  API docs:   {base}/schema")
    os.environ[DEMO_ENV] = "1"  # the app mounts the demo shop only in this process
    os.environ.setdefault("SEGMENTLY_BASE_URL", base)
    ctx.invoke(serve, host=host, port=port, workers=1)


def _check_migrated(settings: Settings) -> None:
    from segmently.db.engine import Database
    from segmently.db.migrate import NotMigratedError, ensure_migrated
    from segmently.plugins import PluginHost
    from segmently.tiers import PlansFileError, load_plans

    async def check() -> None:
        db = Database(settings.database_url)
        try:
            host = PluginHost.load(settings.disabled_plugins)
            host.models()
            try:
                load_plans(host.features(), settings.plans_file)
            except PlansFileError as exc:
                _fail(str(exc))
            await ensure_migrated(db, host)
        finally:
            await db.dispose()

    try:
        asyncio.run(check())
    except NotMigratedError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot reach the database: {exc}")


@main.group()
def plugins() -> None:
    """Installed plugins and their features."""


@plugins.command("list")
@click.option(
    "--org", "org_id", default=None, help="Also show the states for one organization and its sites."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_list(org_id: str | None, as_json: bool) -> None:
    """List installed plugins: version, enabled here, load errors, features and plans.

    Needs no database or settings, unless ``--org`` is given: then it adds whether the
    organization's plan includes each plugin, and each site's switch.
    """
    import os

    from segmently.plugins import PluginHost

    disabled = {p.strip() for p in os.environ.get("SEGMENTLY_DISABLED_PLUGINS", "").split(",") if p.strip()}
    host = PluginHost.load(disabled)
    org_on: frozenset[str] | None = None
    sites_on: dict[str, frozenset[str]] = {}
    if org_id is not None:
        org_on, sites_on = asyncio.run(_org_states(_settings(), host, org_id))
    if as_json:
        rows = []
        for info in host.infos:
            row = msgspec.to_builtins(info)
            if org_on is not None:
                row["on_for_org"] = info.name in org_on
                row["on_for_sites"] = {site: info.name in on for site, on in sites_on.items()}
            rows.append(row)
        click.echo(msgspec.json.encode(rows).decode())
        return
    table = Table(title="Segmently plugins", show_lines=True)
    for column in ("plugin", "version", "on this server", "features (minimum plan)"):
        table.add_column(column)
    if org_on is not None:
        table.add_column(f"plan of org {org_id}")
        for site in sites_on:
            table.add_column(f"site {site}")
    for info in host.infos:
        state = "enabled" if info.enabled else f"error: {info.error}" if info.error else "disabled"
        features = "\n".join(f"{f.key} ({f.min_plan})" for f in info.features) or "-"
        cells = [info.name, f"{info.distribution} {info.version}", state, features]
        if org_on is not None:
            cells.append("on" if info.name in org_on else "off")
            cells += ["on" if info.name in on else "off" for on in sites_on.values()]
        table.add_row(*cells)
    Console(width=160).print(table)


async def _org_states(
    settings: Settings, host: PluginHost, org_id: str
) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """Plugins on for the organization (entitlement), and for each of its sites (plus switches)."""
    from sqlalchemy import select

    from segmently.db.models import Organization, Site
    from segmently.kernel import make_kernel

    kernel = make_kernel(settings, host)
    try:
        async with kernel.db.session() as session:
            if await session.get(Organization, org_id) is None:
                _fail(f"no organization with id {org_id!r}")
            sites = list((await session.scalars(select(Site).where(Site.organization_id == org_id))).all())
        on = await host.switched_on(org_id)
        return on, {site.name: await host.switched_on(org_id, site.id) for site in sites}
    finally:
        await kernel.db.dispose()


@main.group()
def db() -> None:
    """Developer tools for the database schema."""


@db.command("revision")
@click.argument("branch")
@click.option("-m", "--message", required=True, help="What the revision changes.")
@_needs_settings
def db_revision(settings: Settings, branch: str, message: str) -> None:
    """Autogenerate a migration for BRANCH (``kernel`` or a plugin name) from the models."""
    from segmently.db.migrate import make_revision
    from segmently.plugins import PluginHost

    host = PluginHost.load(settings.disabled_plugins)
    host.models()
    try:
        make_revision(settings.database_url, host, branch, message)
    except ValueError as exc:
        _fail(str(exc))


@main.group()
def orgs() -> None:
    """Organizations, as the server's operator sees them."""


def _update_org(settings: Settings, org: str, **values: str) -> str:
    """Set columns of the organization named by id or exact name; returns its id."""
    from sqlalchemy import or_, select, update

    from segmently.db.engine import Database
    from segmently.db.models import Organization

    async def run() -> str | None:
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                ids = list(
                    (
                        await session.scalars(
                            select(Organization.id).where(
                                or_(Organization.id == org, Organization.name == org)
                            )
                        )
                    ).all()
                )
                if len(ids) > 1:
                    _fail(f"{len(ids)} organizations are named {org!r}: use the id")
                if not ids:
                    return None
                await session.execute(update(Organization).where(Organization.id == ids[0]).values(**values))
                return ids[0]
        finally:
            await db.dispose()

    found = asyncio.run(run())
    if found is None:
        _fail(f"no organization with id or name {org!r}")
    return str(found)


@orgs.command("set-plan")
@click.argument("org")
@click.argument("plan", type=click.Choice(["free", "professional", "business", "enterprise"]))
@_needs_settings
def orgs_set_plan(settings: Settings, org: str, plan: str) -> None:
    """Set the stored plan of ORG (id or name); applies from the next request on every node."""
    org_id = _update_org(settings, org, plan=plan)
    click.echo(f"organization {org_id} is now on the {plan} plan")


@orgs.command("suspend")
@click.argument("org")
@_needs_settings
def orgs_suspend(settings: Settings, org: str) -> None:
    """Suspend ORG: its users and keys are refused until it is activated."""
    org_id = _update_org(settings, org, status="suspended")
    click.echo(f"organization {org_id} is suspended")


@orgs.command("activate")
@click.argument("org")
@_needs_settings
def orgs_activate(settings: Settings, org: str) -> None:
    """Reactivate a suspended ORG."""
    org_id = _update_org(settings, org, status="active")
    click.echo(f"organization {org_id} is active")


@main.group()
def users() -> None:
    """User accounts, as the server's operator sees them (EMAIL compares case-insensitively)."""


def _account_command(settings: Settings, action: Callable[..., Any], *args: str) -> tuple[str, bool]:
    """Run ``action(session, *args)`` of the account services in one transaction; exit 2 on refusal.

    Returns the user as ``email (id)`` and whether anything changed.
    """
    from segmently.db.engine import Database
    from segmently.domain.accounts.services import AccountCommandError

    async def run() -> tuple[str, bool]:
        db = Database(settings.database_url)
        try:
            async with db.session() as session:
                user, changed = await action(session, *args)
                return f"{user.email} ({user.id})", bool(changed)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except AccountCommandError as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers content


@users.command("suspend")
@click.argument("email")
@_needs_settings
def users_suspend(settings: Settings, email: str) -> None:
    """Suspend the user with EMAIL: their tokens get 403 from the next request, and so does login."""
    from segmently.domain.accounts.services import set_account_status

    user, changed = _account_command(settings, set_account_status, email, "suspended")
    click.echo(f"user {user} is {'now' if changed else 'already'} suspended")


@users.command("activate")
@click.argument("email")
@_needs_settings
def users_activate(settings: Settings, email: str) -> None:
    """Reactivate a suspended user (a deleted one stays deleted)."""
    from segmently.domain.accounts.services import set_account_status

    user, changed = _account_command(settings, set_account_status, email, "active")
    click.echo(f"user {user} is {'now' if changed else 'already'} active")


@users.command("delete")
@click.argument("email")
@_needs_settings
def users_delete(settings: Settings, email: str) -> None:
    """Delete the user with EMAIL: their tokens stop working and login answers as for an unknown account.

    Refused while they are the only owner of an organization with other members.
    """
    from segmently.domain.accounts.services import delete_account

    user, changed = _account_command(settings, delete_account, email)
    click.echo(f"user {user} is {'now' if changed else 'already'} deleted")


def _with_kernel(settings: Settings, work: Callable[[Kernel], Awaitable[T]]) -> T:
    """Run ``work`` with the kernel an app of these settings would have, on a migrated database."""
    from segmently.db.migrate import NotMigratedError, ensure_migrated
    from segmently.kernel import make_kernel
    from segmently.tiers import PlansFileError

    async def run() -> T:
        try:
            kernel = make_kernel(settings)
        except PlansFileError as exc:
            _fail(str(exc))
            raise
        try:
            await ensure_migrated(kernel.db, kernel.plugins)
            return await work(kernel)
        finally:
            await kernel.db.dispose()

    try:
        return asyncio.run(run())
    except NotMigratedError as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers content
    except OSError as exc:
        _fail(f"cannot reach the database: {exc}")
        raise


@main.group()
def visitors() -> None:
    """A visitor's data rights: export or delete everything held about them (docs/data_rights.md)."""


@visitors.command("export")
@click.argument("site_id")
@click.argument("visitor_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the JSON document to this file instead of standard output.",
)
@_needs_settings
def visitors_export(settings: Settings, site_id: str, visitor_id: str, output: Path | None) -> None:
    """Export every row held about VISITOR_ID of site SITE_ID, plugins' data included, as JSON."""
    from segmently.domain.events import visitors as service

    async def work(kernel: Kernel) -> bytes:
        target = await service.find_visitor_site(kernel, site_id)
        if target is None:
            _fail(f"no site with id {site_id!r}")
            raise AssertionError  # unreachable
        doc = await service.export_visitor(kernel, target, visitor_id)
        for plugin, why in doc.plugins_failed.items():
            err.print(f"[bold yellow]warning:[/] plugin {plugin} exported nothing: {why}", highlight=False)
        return msgspec.json.format(msgspec.json.encode(doc), indent=2)

    body = _with_kernel(settings, work)
    if output is None:
        click.echo(body.decode())
    else:
        output.write_bytes(body + b"\n")
        click.echo(f"wrote {output}", err=True)


@visitors.command("delete")
@click.argument("site_id")
@click.argument("visitor_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_needs_settings
def visitors_delete(settings: Settings, site_id: str, visitor_id: str, yes: bool) -> None:
    """Delete everything held about VISITOR_ID of site SITE_ID, then tell the plugins.

    Exits with 1 when a plugin did not delete its data.
    """
    from segmently.domain.events import visitors as service

    async def work(kernel: Kernel) -> service.VisitorDeletion:
        target = await service.find_visitor_site(kernel, site_id)
        if target is None:
            _fail(f"no site with id {site_id!r}")
            raise AssertionError  # unreachable
        if not yes:
            click.confirm(
                f"Delete everything about visitor {visitor_id!r} of site {target.site.name} "
                f"({target.site.url})? This cannot be undone",
                abort=True,
            )
        return await service.delete_visitor(kernel, target, visitor_id)

    out = _with_kernel(settings, work)
    counts = ", ".join(f"{table} {n}" for table, n in out.deleted.items())
    click.echo(f"deleted visitor {visitor_id} of site {site_id}: {counts}")
    if out.plugins_purged:
        click.echo(f"plugins purged: {', '.join(out.plugins_purged)}")
    for plugin, why in out.plugins_not_purged.items():
        err.print(f"[bold red]not purged:[/] plugin {plugin}: {why}", highlight=False, soft_wrap=True)
    if out.plugins_not_purged:
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_needs_settings
def purge(settings: Settings, as_json: bool) -> None:
    """Run the retention purge now: delete event data older than each organization's plan keeps.

    The scheduler runs it daily; running it again is harmless. Exits with 1 when a
    plugin's purge failed.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from segmently.db.base import utcnow
    from segmently.domain.events.retention import PurgeReport, purge_expired

    with Progress(
        TextColumn("purging organizations"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("purge", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        async def work(kernel: Kernel) -> PurgeReport:
            return await purge_expired(kernel, utcnow(), progress=advance)

        report = _with_kernel(settings, work)
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
    else:
        if report.partitions_dropped:
            click.echo(f"dropped partitions: {', '.join(report.partitions_dropped)}")
        click.echo(
            f"deleted {report.total('events')} events, {report.total('event_keys')} event keys and "
            f"{report.total('monthly_visitors')} monthly visitor rows "
            f"in {len(report.organizations)} organizations; "
            f"{report.idempotent_requests} stored idempotent answers and "
            f"{report.outbox_events} delivered outbox events"
        )
    for plugin, orgs in report.plugins_failed.items():
        err.print(
            f"[bold red]error:[/] plugin {plugin} failed to purge {len(orgs)} organizations "
            f"({', '.join(orgs[:5])}{' …' if len(orgs) > 5 else ''}); see the log",
            highlight=False,
            soft_wrap=True,
        )
    if report.plugins_failed:
        sys.exit(1)


@main.group()
def jobs() -> None:
    """Scheduled jobs of the kernel and the plugins (docs/scheduler.md)."""


@jobs.command("list")
@_needs_settings
def jobs_list(settings: Settings) -> None:
    """Every job with its owner and schedule."""
    from segmently.domain.alerts.jobs import kernel_jobs
    from segmently.scheduler import Jobs

    async def work(kernel: Kernel) -> list[tuple[str, str, str]]:
        found = Jobs(kernel, kernel_jobs(kernel))
        return [
            (
                name,
                found.owners[name],
                f"every {spec.seconds:g} s" if spec.seconds is not None else f"cron {spec.cron}",
            )
            for name, spec in found.specs.items()
        ]

    table = Table("job", "owner", "schedule")
    for row in _with_kernel(settings, work):
        table.add_row(*row)
    Console().print(table)


@jobs.command("run")
@click.argument("name")
@_needs_settings
def jobs_run(settings: Settings, name: str) -> None:
    """Run the job NAME once now (under its cluster lock, like the scheduler would).

    Exits with 1 when the job failed, 3 when another process is running it right now.
    """
    from segmently.domain.alerts.jobs import kernel_jobs
    from segmently.scheduler import Jobs, Outcome

    async def work(kernel: Kernel) -> Outcome:
        found = Jobs(kernel, kernel_jobs(kernel))
        if name not in found.specs:
            _fail(f"no job {name!r}; known: {', '.join(found.specs)}")
        return await found.run(name)

    outcome = _with_kernel(settings, work)
    click.echo(f"job {name}: {outcome.value}")
    if outcome is Outcome.FAILED:
        sys.exit(1)
    if outcome is Outcome.SKIPPED:
        sys.exit(3)
