"""npm in ``snippet/`` for the tests: one process at a time installs, each builds where it likes.

pytest-xdist runs the snippet's own checks and the browser tests in parallel workers; ``npm ci``
replaces ``node_modules`` that another worker's build would be reading, so installing takes a
file lock, and builds go to a directory of the caller's (``SNIPPET_OUTDIR``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "snippet"
MIN_NODE = (20, 19)  # vitest 4
LOCK = SNIPPET / ".npm.lock"


def npm() -> str:
    """The ``npm`` executable; fails the test (never skips) when Node.js is missing or too old."""
    npm_path, node = shutil.which("npm"), shutil.which("node")
    if npm_path is None or node is None:
        pytest.fail(
            "Node.js and npm are needed to type-check, test and build the snippet (snippet/); "
            f"install Node.js {'.'.join(map(str, MIN_NODE))} or later, e.g. `apt-get install nodejs npm`"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < MIN_NODE:
        pytest.fail(f"the snippet needs Node.js {'.'.join(map(str, MIN_NODE))} or later, found {version!r}")
    return npm_path


def run(*args: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """``npm *args`` in ``snippet/``; fails the test with npm's output when it fails."""
    full = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "CI": "true", **(env or {})}
    r = subprocess.run(
        [npm(), *args], cwd=SNIPPET, capture_output=True, text=True, timeout=timeout, check=False, env=full
    )
    assert r.returncode == 0, f"npm {' '.join(args)} failed:\n{r.stdout[-8000:]}\n{r.stderr[-4000:]}"
    return r.stdout


@contextmanager
def _locked() -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stale() -> bool:
    marker = SNIPPET / "node_modules" / ".package-lock.json"  # npm rewrites it on every install
    return not marker.exists() or marker.stat().st_mtime < (SNIPPET / "package-lock.json").stat().st_mtime


def ensure_installed() -> None:
    """``npm ci`` when ``node_modules`` is missing or older than ``package-lock.json`` (once)."""
    with _locked():
        if _stale():
            run("ci", "--no-audit", "--no-fund", timeout=600)


def build(outdir: Path) -> Path:
    """Build the snippet into ``outdir`` (``segmently.js`` and one file per chunk); returns it."""
    ensure_installed()
    run("run", "build", timeout=300, env={"SNIPPET_OUTDIR": str(outdir)})
    if not (outdir / "segmently.js").is_file():
        pytest.fail(f"npm run build did not write {outdir / 'segmently.js'}")
    return outdir
