"""The peer of ``/events/track`` in ``bench/ingest.py``: the least a track endpoint can do on this stack.

``POST /api/v1/events/track`` served by a bare ASGI function under uvicorn (uvloop, httptools), one
process per worker on ``SO_REUSEPORT`` sockets like ``segmently serve --workers N``: it compares
``X-API-Key`` with the one key it was given, decodes the body with msgspec, and stores the event with
the same statement as the server's one-statement path (the ``event_keys`` claim and the insert in one
CTE, autocommitted, from a psycopg pool), then answers the same ``202``. No rate limit, no plans, no
experiments, no plugins, no metrics, no CORS: what is left is HTTP, decoding and one round trip, so
the server's figures divided by this one's say what the product costs on top, on the same machine in
the same run.

Run by ``bench/ingest.py``: ``python bench/bare_track.py PORT WORKERS DATABASE_URL SITE_ID API_KEY``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import socket
import sys
from typing import Any

import msgspec
import uvicorn
from psycopg_pool import AsyncConnectionPool

from segmently.db.base import new_id
from segmently.domain.events.ingest import _PG_STORE
from segmently.domain.events.ingest import _StoreRow as Row

ANSWER = b'{"accepted":1,"duplicates":0,"rejected":{}}'
REFUSED = b'{"status_code":400,"detail":"Invalid input"}'


class Event(msgspec.Struct):
    event_name: str
    visitor_id: str
    event_id: str | None = None
    session_id: str | None = None
    experiment_id: str | None = None
    variant_id: str | None = None
    event_data: msgspec.Raw = msgspec.Raw(b"")
    url: str | None = None
    device_type: str | None = None
    timestamp: dt.datetime | None = None


def make_app(url: str, site_id: str, api_key: str) -> Any:
    decode = msgspec.json.Decoder(Event).decode
    encode = msgspec.json.Encoder().encode
    key = api_key.encode()
    pool = AsyncConnectionPool(url, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False)
    opened: list[asyncio.Task[None]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if not opened:
            opened.append(asyncio.ensure_future(pool.open()))
        await opened[0]
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, answer = 202, ANSWER
        try:
            if dict(scope["headers"]).get(b"x-api-key") != key:
                raise ValueError("key")
            e = decode(body)
            now = dt.datetime.now(dt.UTC)
            row = Row(
                new_id(),
                min(e.timestamp, now) if e.timestamp else now,
                e.event_name,
                e.visitor_id,
                e.session_id,
                e.experiment_id,
                e.variant_id,
                e.event_data if e.event_data else None,
                e.url,
                e.device_type,
                e.event_id,
            )
            async with pool.connection() as conn:
                cur = await conn.execute(_PG_STORE, (encode([row]).decode(), site_id, now, site_id))
                await cur.fetchall()
        except (ValueError, msgspec.DecodeError):
            status, answer = 400, REFUSED
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    return app


def worker(port: int, url: str, site_id: str, api_key: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        make_app(url, site_id, api_key), loop="uvloop", http="httptools", access_log=False, log_config=None
    )
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    port, workers, url, site_id, api_key = sys.argv[1:6]
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    procs = [
        multiprocessing.Process(target=worker, args=(int(port), url, site_id, api_key))
        for _ in range(int(workers))
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
