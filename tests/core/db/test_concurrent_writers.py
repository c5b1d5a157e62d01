"""The CLI (another process) and a running server write the same database at the same time."""

from __future__ import annotations

import asyncio
import sys
import textwrap

import httpx
import pytest
from sqlalchemy import func, select

from segmently.db.engine import Database
from segmently.db.models import OutboxEvent

pytestmark = pytest.mark.usefixtures("backend")

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from segmently.db.engine import Database
    from segmently.outbox import emit

    async def main(url):
        db = Database(url)
        for i in range(150):
            async with db.session() as s:
                emit(s, "experiment.created", "org-cli", {"n": i})
        await db.dispose()

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_another_process_and_the_server_write_concurrently(
    client: httpx.AsyncClient, database_url: str
) -> None:
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, database_url, stderr=asyncio.subprocess.PIPE
    )
    statuses = []
    for i in range(150):
        statuses.append((await client.post("/api/v1/dummy/notes", json={"text": f"n{i}"})).status_code)
    _, stderr = await asyncio.wait_for(writer.communicate(), 120)
    assert writer.returncode == 0, stderr.decode()[-2000:]
    assert statuses == [201] * 150  # no "database is locked"
    db = Database(database_url)
    try:
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(OutboxEvent)) == 150
    finally:
        await db.dispose()
    page = (await client.get("/api/v1/dummy/notes", params={"limit": 200})).json()
    assert len(page["items"]) == 150
