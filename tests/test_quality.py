"""Lint, formatting, strict types, import boundaries and hook docs are part of the test run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segmently import hookspecs

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
        ["lint-imports"],
    ],
    ids=["ruff", "ruff-format", "mypy-strict", "import-boundaries"],
)
def test_tool_passes(command: list[str]) -> None:
    r = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, f"{' '.join(command)} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"


def hook_names() -> list[str]:
    return sorted(
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, f"{hookspecs.PROJECT_NAME}_spec")
    )


def test_every_hook_is_documented() -> None:
    names = hook_names()
    assert len(names) >= 13
    doc = (ROOT / "docs" / "plugin_hooks.md").read_text()
    missing = [n for n in names if not re.search(rf"`{n}\(", doc)]
    assert not missing, f"docs/plugin_hooks.md does not document: {', '.join(missing)}"


def test_dummy_plugin_implements_every_hook() -> None:
    from segmently_dummy import plugin

    missing = [n for n in hook_names() if not hasattr(plugin, n)]
    assert not missing, f"the dummy plugin lacks: {', '.join(missing)}"
