"""Fixtures of the kernel's tests: real ``segmently`` commands serving on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

SEGMENTLY = str(Path(sys.executable).parent / "segmently")


class Server:
    """A ``segmently`` process answering on ``base``; its output goes to ``log``."""

    def __init__(self, proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.proc, self.base, self.log = proc, base, log


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``segmently ARGS --port <free port>`` and wait until it logs its start-up (``ready``
    times) and answers ``/health``; stopped at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start(*args: str, env: dict[str, str], ready: int = 1) -> Server:
        port = free_port()
        log = tmp_path / f"{args[0]}-{port}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [SEGMENTLY, *args, "--port", str(port)],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                # /health alone could be another test's server that took the same free port first;
                # `ready`: processes that must have started (each worker of `serve --workers N` logs it)
                ours = log.read_text(errors="replace").count("Application startup complete") >= ready
                if ours and httpx.get(base + "/health", timeout=2).status_code == 200:
                    return Server(proc, base, log)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("no answer on /health in 60 s: " + log.read_text()[-3000:])

    yield _start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
