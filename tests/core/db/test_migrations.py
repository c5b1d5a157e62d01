"""Migrations: kernel and plugin branches, no drift between models and migrations, refusal when behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection, inspect

from segmently.app import create_app
from segmently.db.base import Base
from segmently.db.engine import Database
from segmently.db.migrate import NotMigratedError, ensure_migrated, upgrade
from segmently.db.models.events import PARTITION_NAME
from segmently.plugins import PluginHost

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
async def empty_db(empty_database_url: str) -> AsyncIterator[Database]:
    db = Database(empty_database_url)
    yield db
    await db.dispose()


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_name": lambda n, t, _p: (
                not (t == "table" and n and (n.startswith("alembic_version") or PARTITION_NAME.match(n)))
            ),
        },
    )
    return list(compare_metadata(ctx, Base.metadata))


async def test_models_and_migrations_never_drift(database_url: str, plugins: PluginHost) -> None:
    plugins.models()
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_each_plugin_migrates_on_its_own_branch(empty_db: Database) -> None:
    without_dummy = PluginHost.load(disabled={"dummy"})
    assert await asyncio.to_thread(upgrade, empty_db.url, without_dummy) == ["kernel"]
    tables = await _tables(empty_db)
    assert {"outbox_events", "alembic_version"} <= tables
    assert "dummy_notes" not in tables and "alembic_version_dummy" not in tables
    await ensure_migrated(empty_db, without_dummy)

    with_dummy = PluginHost.load()
    with pytest.raises(NotMigratedError, match=r"dummy behind.*run `segmently migrate`"):
        await ensure_migrated(empty_db, with_dummy)
    assert await asyncio.to_thread(upgrade, empty_db.url, with_dummy) == ["dummy"]
    assert {"dummy_notes", "alembic_version_dummy"} <= await _tables(empty_db)
    await ensure_migrated(empty_db, with_dummy)
    # running it again changes nothing; disabling the plugin later does not break the kernel's history
    assert await asyncio.to_thread(upgrade, empty_db.url, with_dummy) == []
    await ensure_migrated(empty_db, without_dummy)


async def test_app_refuses_to_start_on_an_unmigrated_database(empty_database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    app = create_app(make_settings(empty_database_url, tmp_path))
    with pytest.raises(ExceptionGroup) as failure:
        async with AsyncTestClient(app):
            pass
    assert failure.group_contains(NotMigratedError, match="run `segmently migrate` first")
