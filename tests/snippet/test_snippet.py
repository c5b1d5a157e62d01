"""The snippet's own checks run in the one test command: type check, vitest, the esbuild build.

A single test runs every npm step, in order; installing takes a lock shared with the browser
tests (``tests/snippet/npm.py``).
"""

from __future__ import annotations

import runpy
from pathlib import Path

from tests.snippet import npm

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
TARGETING_CASES = FIXTURES / "targeting_cases.json"
CONVERSION_RULE_CASES = FIXTURES / "conversion_rule_cases.json"


def test_snippet_typechecks_passes_its_unit_tests_and_builds() -> None:
    npm.ensure_installed()
    npm.run("run", "typecheck", timeout=300)
    out = npm.run("test", timeout=300)
    assert " passed" in out and " failed" not in out, out[-4000:]
    npm.run("run", "build", timeout=300)
    core = npm.SNIPPET / "dist" / "segmently.js"
    assert core.is_file(), "npm run build did not write dist/segmently.js"
    assert core.stat().st_size > 0, "dist/segmently.js is empty"


def test_targeting_cases_file_is_what_the_script_writes() -> None:
    script = runpy.run_path(str(FIXTURES / "make_targeting_cases.py"))
    assert TARGETING_CASES.read_text(encoding="ascii") == script["render"](script["build"]()), (
        "regenerate with: uv run python tests/fixtures/make_targeting_cases.py"
    )


def test_conversion_rule_cases_file_is_what_the_script_writes() -> None:
    script = runpy.run_path(str(FIXTURES / "make_conversion_rule_cases.py"))
    assert CONVERSION_RULE_CASES.read_text(encoding="ascii") == script["render"](script["build"]()), (
        "regenerate with: uv run python tests/fixtures/make_conversion_rule_cases.py"
    )
