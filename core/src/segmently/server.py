"""Run the app with uvicorn: one process, or N workers on ``SO_REUSEPORT`` sockets.

Each worker binds its own socket to the same port with ``SO_REUSEPORT``, so the
kernel spreads new connections over the workers. uvicorn's own ``--workers``
shares one accepting socket, and under keep-alive load one worker took every
connection here; separate sockets really use every core.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)
_EARLY_EXIT_SECONDS = 10.0


def _socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said explicitly: asyncio turns Nagle's algorithm off only on connections whose
    # socket says so; with it on, a body written after its headers waits for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config() -> uvicorn.Config:
    return uvicorn.Config(
        "segmently.app:create_app",
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_keep_alive=30,
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For counts only from SEGMENTLY_TRUSTED_PROXIES (ratelimit.py)
    )


class _Server(uvicorn.Server):
    """uvicorn's server; once the app has started, what start-up built is frozen out of the GC.

    The app's start-up leaves some 180,000 long-lived objects (routes, models, metadata,
    templates). A full collection walks them all, about 125 ms on a small machine, and stalls
    every request in flight; after ``gc.freeze()`` collections only walk what requests create.
    The youngest generation is then collected every 20,000 allocations instead of 700: a
    batch of events allocates thousands of objects, nearly all freed by reference counting.
    (``bench/ingest.py``: the paced ``/events/track`` p99 and the conversion mix,
    docs/benchmarks.md.)
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then collect and freeze what start-up left; collect less often."""
        await super().startup(sockets=sockets)
        if self.started:
            gc.collect()
            gc.freeze()
            gc.set_threshold(20_000, 20, 20)


def _worker(host: str, port: int, log_level: str) -> None:
    from segmently.logs import configure_logging

    configure_logging(log_level)
    sock = _socket(host, port, reuse_port=True)
    _Server(_uvicorn_config()).run(sockets=[sock])


def serve(host: str, port: int, workers: int, log_level: str = "INFO") -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    if workers <= 1:
        sock = _socket(host, port, reuse_port=False)
        server = _Server(_uvicorn_config())
        server.run(sockets=[sock])
        return 0 if server.started else 3
    _socket(host, port, reuse_port=False).close()  # fail early if something else holds the port
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="segmently-metrics-"))
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> BaseProcess:
        proc = ctx.Process(
            target=_worker, args=(host, port, log_level), name="segmently-worker", daemon=False
        )
        proc.start()
        return proc

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    procs = [start() for _ in range(workers)]
    log.info("serving on http://%s:%d with %d workers", host, port, workers)
    code = 0
    while not stopping:
        time.sleep(0.2)
        for i, proc in enumerate(procs):
            if proc.is_alive():
                continue
            if time.monotonic() - started < _EARLY_EXIT_SECONDS:
                log.error("a worker exited during start-up (code %s); stopping", proc.exitcode)
                stopping, code = True, 3
                break
            log.warning("worker %s exited with code %s; starting a new one", proc.pid, proc.exitcode)
            procs[i] = start()
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return code
