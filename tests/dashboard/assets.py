"""The dashboard's front-end assets (``web/``) built once for the tests, like the snippet.

``npm ci`` and the build run under a file lock: pytest-xdist workers share ``web/``, and
the build writes into the kernel's static folder, which every test server reads.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = ROOT / "core" / "src" / "segmently" / "dashboard" / "static" / "dist"
LOCK = WEB / ".npm.lock"


def _npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to build the dashboard's assets (web/); install Node.js 20 or later")
    env = {**os.environ, "NO_COLOR": "1", "CI": "true"}
    r = subprocess.run(
        [npm, *args], cwd=WEB, capture_output=True, text=True, timeout=600, check=False, env=env
    )
    assert r.returncode == 0, f"npm {' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"


def build() -> Path:
    """``npm ci`` when ``node_modules`` is missing or stale, then ``npm run build``; returns the output."""
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            marker = WEB / "node_modules" / ".package-lock.json"
            if not marker.exists() or marker.stat().st_mtime < (WEB / "package-lock.json").stat().st_mtime:
                _npm("ci", "--no-audit", "--no-fund")
            _npm("run", "build")
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    for name in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"):
        assert (DIST / name).is_file(), f"the build left out {name}"
    return DIST
