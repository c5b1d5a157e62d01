"""Small helpers shared by tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_plugin_dist(root: Path, name: str, source: str) -> Path:
    """Write a one-module plugin with a real entry point under ``root``; returns the dir for sys.path."""
    root.mkdir(parents=True, exist_ok=True)
    module = f"segmently_test_{name}"
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[segmently.plugins]\n{name} = {module}\n")
    return root
