"""docs/development.md's layout table names every module and package of optbench, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_layout_table_matches_the_tree():
    text = (ROOT / "docs" / "development.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `optbench/")]
    named = set()
    for row in rows:
        first = row.split("|")[1]
        paths = re.findall(r"`([^`]+)`", first)
        folder = Path(paths[0]).parent  # later names in a cell share the first one's folder
        for path in paths:
            named.add(str(Path(path)) if "/" in path else str(folder / path))
    in_tree = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "optbench").iterdir()
        if (path.suffix == ".py" and path.stem not in ("__init__", "__main__"))
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert named == in_tree
