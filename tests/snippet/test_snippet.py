"""The snippet's own checks run in the one test command: type check, vitest, the esbuild build.

A single test runs every npm step, in order, so that pytest-xdist never runs two of them at once
in ``snippet/`` (``npm ci`` replaces ``node_modules`` that a parallel step would be reading).
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "snippet"
FIXTURES = ROOT / "tests" / "fixtures"
TARGETING_CASES = FIXTURES / "targeting_cases.json"
MIN_NODE = (20, 19)  # vitest 4


def _npm() -> str:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail(
            "Node.js and npm are needed to type-check, test and build the snippet (snippet/); "
            f"install Node.js {'.'.join(map(str, MIN_NODE))} or later, e.g. `apt-get install nodejs npm`"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    parts = tuple(int(p) for p in version.lstrip("v").split(".")[:2] if p.isdigit())
    if parts < MIN_NODE:
        pytest.fail(f"the snippet needs Node.js {'.'.join(map(str, MIN_NODE))} or later, found {version!r}")
    return npm


def _run(npm: str, *args: str, timeout: float) -> str:
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "CI": "true"}
    r = subprocess.run(
        [npm, *args], cwd=SNIPPET, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    assert r.returncode == 0, f"npm {' '.join(args)} failed:\n{r.stdout[-8000:]}\n{r.stderr[-4000:]}"
    return r.stdout


def _installed_before_lockfile() -> bool:
    """Whether ``node_modules`` is missing or older than ``package-lock.json``."""
    marker = SNIPPET / "node_modules" / ".package-lock.json"  # npm rewrites it on every install
    if not marker.exists():
        return True
    return marker.stat().st_mtime < (SNIPPET / "package-lock.json").stat().st_mtime


def test_snippet_typechecks_passes_its_unit_tests_and_builds() -> None:
    npm = _npm()
    if _installed_before_lockfile():
        _run(npm, "ci", "--no-audit", "--no-fund", timeout=600)
    _run(npm, "run", "typecheck", timeout=300)
    out = _run(npm, "test", timeout=300)
    assert " passed" in out and " failed" not in out, out[-4000:]
    _run(npm, "run", "build", timeout=300)
    core = SNIPPET / "dist" / "segmently.js"
    assert core.is_file(), "npm run build did not write dist/segmently.js"
    assert core.stat().st_size > 0, "dist/segmently.js is empty"


def test_targeting_cases_file_is_what_the_script_writes() -> None:
    script = runpy.run_path(str(FIXTURES / "make_targeting_cases.py"))
    assert TARGETING_CASES.read_text(encoding="ascii") == script["render"](script["build"]()), (
        "regenerate with: uv run python tests/fixtures/make_targeting_cases.py"
    )
