"""The demo sources of ``vtforge corpus build --sources demo``: a commit pack and a GitHub pack,
generated (deterministic commits, fixed dates) under ``<data_dir>/corpus/demo-sources/``.

The commit pack is a small calculator library whose history fixes bugs with tests; the GitHub pack
(``gh api`` JSON) holds one issue closed by a merged pull request that changes source and tests,
and one issue no pull request closes. Tests build their own packs with ``build_commit_pack``.
"""

from __future__ import annotations

import difflib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from vtforge import gitrepo
from vtforge.config import Config

MIT = """MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction.
"""

Change = tuple[str, Mapping[str, str | bytes | None]]  # (message, path -> new content, None = delete)


def build_commit_pack(folder: Path, changes: Sequence[Change]) -> Path:
    """A git repository at ``folder`` with one commit per change (the first is the initial tree)."""
    if folder.exists():
        shutil.rmtree(folder)
    gitrepo.init_repo(folder)
    for message, files in changes:
        for path, content in files.items():
            target = folder / path
            if content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content if isinstance(content, bytes) else content.encode())
        gitrepo.commit_all(folder, message)
    return folder


def _ops(body: str) -> str:
    return f'"""Arithmetic helpers for the toy calculator."""\n\n\n{body}'


_ADD = "def add(a, b):\n    return a + b\n"
_SUB_BAD = "def sub(a, b):\n    return b - a\n"
_SUB = "def sub(a, b):\n    return a - b\n"
_MEAN_BAD = "def mean(values):\n    return sum(values) / (len(values) + 1)\n"
_MEAN = (
    "def mean(values):\n    if not values:\n        raise ValueError('mean of no values')\n"
    "    return sum(values) / len(values)\n"
)
_CLAMP = (
    "def clamp(value, low, high):\n    if low > high:\n        raise ValueError('low > high')\n"
    "    return max(low, min(value, high))\n"
)

DEMO_COMMITS: tuple[Change, ...] = (
    (
        "Initial calculator",
        {
            "LICENSE": MIT,
            "README.md": "# toycalc\n\nA tiny calculator library.\n",
            "toycalc/__init__.py": "",
            "toycalc/ops.py": _ops(f"{_ADD}\n\n{_SUB_BAD}\n\n{_MEAN_BAD}"),
            "tests/test_ops.py": "from toycalc.ops import add\n\n\n"
            "def test_add():\n    assert add(2, 3) == 5\n",
        },
    ),
    (
        "Fix sub: operands were swapped\n\nsub(5, 3) returned -2. The subtraction took its operands in the\n"
        "wrong order; a test pins the order down.",
        {
            "toycalc/ops.py": _ops(f"{_ADD}\n\n{_SUB}\n\n{_MEAN_BAD}"),
            "tests/test_ops.py": "from toycalc.ops import add, sub\n\n\n"
            "def test_add():\n    assert add(2, 3) == 5\n"
            "\n\ndef test_sub():\n    assert sub(5, 3) == 2\n",
        },
    ),
    (
        "Fix mean: divide by the number of values\n\n"
        "The denominator counted one value too many, and an empty\n"
        "list divided by one instead of failing. mean() now raises ValueError on no values.",
        {
            "toycalc/ops.py": _ops(f"{_ADD}\n\n{_SUB}\n\n{_MEAN}"),
            "tests/test_mean.py": "import pytest\n\nfrom toycalc.ops import mean\n\n\ndef test_mean():\n"
            "    assert mean([1, 2, 3]) == 2\n\n\n"
            "def test_mean_empty():\n    with pytest.raises(ValueError):\n"
            "        mean([])\n",
        },
    ),
    (
        "Add clamp() with a range check\n\n"
        "clamp keeps a value inside [low, high] and refuses an empty range.",
        {
            "toycalc/ops.py": _ops(f"{_ADD}\n\n{_SUB}\n\n{_MEAN}\n\n{_CLAMP}"),
            "tests/test_clamp.py": "import pytest\n\nfrom toycalc.ops import clamp\n\n\ndef test_clamp():\n"
            "    assert clamp(5, 0, 3) == 3\n    assert clamp(-1, 0, 3) == 0\n\n\ndef test_clamp_range():\n"
            "    with pytest.raises(ValueError):\n        clamp(1, 3, 0)\n",
        },
    ),
    (
        "Document the helpers in the README",
        {
            "README.md": "# toycalc\n\nA tiny calculator library: `add`, `sub`, `mean` and `clamp`.\n\n"
            "`mean` raises `ValueError` on an empty list; `clamp` refuses an empty range.\n",
        },
    ),
)


def _hunks(before: str, after: str) -> str:
    lines = list(difflib.unified_diff(before.splitlines(True), after.splitlines(True), n=3))
    return "".join(lines[2:])  # GitHub's "patch" holds the hunks only


def build_github_pack(folder: Path) -> Path:
    """A ``gh api`` pack for ``acme/widgets``: issue 1 closed by merged PR 2 (source + tests)."""
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "pulls" / "2").mkdir(parents=True)
    (folder / "pulls" / "2" / "comments.json").write_text(
        json.dumps(
            [
                {
                    "path": "widgets/size.py",
                    "body": "Rounding half up matches what the label printer expects; banker's rounding "
                    "was the surprise here.",
                    "user": {"login": "reviewer"},
                    "diff_hunk": "@@",
                    "created_at": "2024-05-02T10:00:00Z",
                }
            ]
        )
    )
    repo = {"full_name": "acme/widgets", "license": {"spdx_id": "MIT"}}
    issues = [
        {
            "number": 1,
            "title": "widget_size rounds 2.5 down to 2",
            "body": "`widget_size(2.5)` returns 2 but labels expect 3: sizes should round half up, "
            "not to the nearest even number.",
            "state": "closed",
            "html_url": "https://github.com/acme/widgets/issues/1",
            "created_at": "2024-05-01T09:00:00Z",
        },
        {
            "number": 3,
            "title": "Support metric sizes",
            "body": "It would be nice to accept centimetres as well as inches.",
            "state": "open",
            "html_url": "https://github.com/acme/widgets/issues/3",
            "created_at": "2024-05-03T09:00:00Z",
        },
    ]
    pulls = [
        {
            "number": 2,
            "title": "Round widget sizes half up",
            "body": "Fixes #1",
            "merged_at": "2024-05-02T12:00:00Z",
            "created_at": "2024-05-02T08:00:00Z",
            "html_url": "https://github.com/acme/widgets/pull/2",
            "merge_commit_sha": "b" * 40,
            "base": {"sha": "a" * 40, "repo": {"full_name": "acme/widgets"}},
        }
    ]
    source_before = "def widget_size(inches):\n    return round(inches)\n"
    source_after = (
        "import math\n\n\ndef widget_size(inches):\n"
        "    # round half up: 2.5 -> 3, not Python's round-half-even\n"
        "    return math.floor(inches + 0.5)\n"
    )
    test_before = (
        "from widgets.size import widget_size\n\n\ndef test_whole():\n    assert widget_size(2) == 2\n"
    )
    test_after = test_before + "\n\ndef test_half_rounds_up():\n    assert widget_size(2.5) == 3\n"
    files = [
        {"filename": "widgets/size.py", "status": "modified", "patch": _hunks(source_before, source_after)},
        {"filename": "tests/test_size.py", "status": "modified", "patch": _hunks(test_before, test_after)},
    ]
    for name, value in (("repo.json", repo), ("issues.json", issues), ("pulls.json", pulls)):
        (folder / name).write_text(json.dumps(value, indent=1))
    (folder / "pulls" / "2" / "files.json").write_text(json.dumps(files, indent=1))
    return folder


def demo_sources(cfg: Config) -> list[tuple[str, Path]]:
    """The demo commit pack and GitHub pack, (re)generated under the data dir."""
    root = Path(cfg.data_dir) / "corpus" / "demo-sources"
    return [
        ("commit-pack", build_commit_pack(root / "toycalc", DEMO_COMMITS)),
        ("github", build_github_pack(root / "acme-widgets")),
    ]
