"""Alembic migrations: the kernel branch and one branch per plugin with models.

Each branch keeps its own version table (``alembic_version`` for the kernel,
``alembic_version_<plugin>`` for a plugin), so installing, disabling or removing a
plugin never leaves the kernel's history with revisions it cannot find.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import msgspec
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from segmently.db.engine import Database
from segmently.plugins.host import PluginHost

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
KERNEL_BRANCH = "kernel"


class Branch(msgspec.Struct, frozen=True):
    """One line of migrations: the kernel's or one plugin's."""

    name: str
    version_dirs: tuple[Path, ...]

    @property
    def version_table(self) -> str:
        """Where Alembic records this branch's current revision."""
        return "alembic_version" if self.name == KERNEL_BRANCH else f"alembic_version_{self.name}"

    @property
    def table_prefix(self) -> str | None:
        """Tables of a plugin branch start with the plugin's name; the kernel owns the rest."""
        return None if self.name == KERNEL_BRANCH else f"{self.name}_"


class NotMigratedError(RuntimeError):
    """The database lags behind the code: ``segmently migrate`` has to run first."""


def branches(host: PluginHost) -> list[Branch]:
    """The kernel branch first, then each enabled plugin's, in name order."""
    out = [Branch(KERNEL_BRANCH, (MIGRATIONS_DIR / "versions",))]
    for name, dirs in sorted(host.migration_dirs().items()):
        if dirs:
            out.append(Branch(name, tuple(dirs)))
    return out


def alembic_config(url: str, branch: Branch, all_branches: Sequence[Branch]) -> Config:
    """An Alembic config for one branch, built in code (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(d) for d in branch.version_dirs))
    cfg.attributes["url"] = url
    cfg.attributes["branch"] = branch
    cfg.attributes["other_prefixes"] = tuple(b.table_prefix for b in all_branches if b.table_prefix)
    return cfg


def upgrade(url: str, host: PluginHost) -> list[str]:
    """Upgrade every branch to its head; returns the branches that changed.

    Runs its own event loop: call it from synchronous code (the CLI) or a thread.
    """
    db = Database(url)
    try:
        before = asyncio.run(pending_branches(db, host))
    finally:
        asyncio.run(db.dispose())
    all_branches = branches(host)
    for branch in all_branches:
        command.upgrade(alembic_config(url, branch, all_branches), "heads")
    return before


def _current_heads(conn: Connection, version_table: str) -> set[str]:
    ctx = MigrationContext.configure(conn, opts={"version_table": version_table})
    return set(ctx.get_current_heads())


async def pending_branches(db: Database, host: PluginHost) -> list[str]:
    """Names of the branches whose database revision is not the code's head."""
    pending = []
    all_branches = branches(host)
    async with db.engine.connect() as conn:
        for branch in all_branches:
            script = ScriptDirectory.from_config(alembic_config(db.url, branch, all_branches))
            current = await conn.run_sync(_current_heads, branch.version_table)
            if current != set(script.get_heads()):
                pending.append(branch.name)
    return pending


async def ensure_migrated(db: Database, host: PluginHost) -> None:
    """Raise :class:`NotMigratedError`, naming the command to run, if any branch lags."""
    pending = await pending_branches(db, host)
    if pending:
        raise NotMigratedError(
            f"the database is not migrated ({', '.join(pending)} behind): run `segmently migrate` first"
        )


def make_revision(url: str, host: PluginHost, branch_name: str, message: str) -> None:
    """Autogenerate a revision for one branch from the models (a developer's tool).

    The database at ``url`` must be at the branch's head; the new file lands in
    the branch's first version directory.
    """
    all_branches = branches(host)
    branch = next((b for b in all_branches if b.name == branch_name), None)
    if branch is None:
        raise ValueError(
            f"no migration branch {branch_name!r}; known: {', '.join(b.name for b in all_branches)}"
        )
    cfg = alembic_config(url, branch, all_branches)
    script = ScriptDirectory.from_config(cfg)
    first = not script.get_heads()
    command.revision(
        cfg,
        message=message,
        autogenerate=True,
        head="base" if first else "head",
        branch_label=branch.name if first else None,
        version_path=str(branch.version_dirs[0]),
    )
