"""A tiny real package, packed as an sdist with its tests, and a tiny project history.

Synthesis and commit-pack tests run on these instead of a PyPI download: same code paths, no
network, a test suite that takes well under a second.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from vtforge.gitrepo import git

TOY_NAME = "toyshop"
TOY_VERSION = "1.0"

MODULE = '''"""toyshop: prices, baskets and discounts."""


def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value


def total(prices):
    result = 0
    for price in prices:
        result = result + price
    return result


def discount(price, percent):
    if percent <= 0:
        return price
    return price - price * percent // 100


def first_over(prices, limit):
    for index, price in enumerate(prices):
        if price > limit:
            return index
    return -1


def is_bargain(price, budget):
    return price <= budget and price > 0
'''

TESTS = """from toyshop import clamp, discount, first_over, is_bargain, total


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_clamp_low():
    assert clamp(-3, 0, 10) == 0


def test_clamp_high():
    assert clamp(30, 0, 10) == 10


def test_total():
    assert total([1, 2, 3]) == 6


def test_total_empty():
    assert total([]) == 0


def test_discount():
    assert discount(200, 10) == 180


def test_no_discount():
    assert discount(200, 0) == 200


def test_first_over():
    assert first_over([1, 5, 9], 4) == 1


def test_first_over_none():
    assert first_over([1, 2], 4) == -1


def test_bargain():
    assert is_bargain(5, 10)


def test_not_bargain():
    assert not is_bargain(15, 10)
"""

PKG_INFO = f"""Metadata-Version: 2.1
Name: {TOY_NAME}
Version: {TOY_VERSION}
Summary: Prices, baskets and discounts (a test fixture)
License: MIT
"""


def make_sdist(cache: Path) -> Path:
    """``<cache>/toyshop-1.0.tar.gz`` laid out like a real sdist (top folder, PKG-INFO, tests)."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{TOY_NAME}-{TOY_VERSION}.tar.gz"
    top = f"{TOY_NAME}-{TOY_VERSION}"
    files = {
        f"{top}/PKG-INFO": PKG_INFO,
        f"{top}/setup.py": "from setuptools import setup\n\nsetup(name='toyshop', version='1.0')\n",
        f"{top}/toyshop/__init__.py": MODULE,
        f"{top}/tests/test_toyshop.py": TESTS,
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return path


def write(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


BUGGY_TOTAL = MODULE.replace("    result = 0\n    for price", "    result = 1\n    for price")


def make_history(repo: Path) -> dict[str, str]:
    """A project history: a real fix with its test, a docs-only change, and a refactor whose tests
    never fail without it. Returns ``{label: commit}``."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    write(
        repo,
        {
            "LICENSE": "MIT License\n\nPermission is hereby granted, free of charge, to any person...\n",
            "toyshop/__init__.py": BUGGY_TOTAL,
            "tests/test_toyshop.py": TESTS.replace(
                "def test_total():\n    assert total([1, 2, 3]) == 6\n\n\n", ""
            ).replace("def test_total_empty():\n    assert total([]) == 0\n\n\n", ""),
            "README.md": "# toyshop\n",
        },
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial toyshop")
    commits = {"initial": git(repo, "rev-parse", "HEAD").strip()}
    write(repo, {"toyshop/__init__.py": MODULE, "tests/test_toyshop.py": TESTS})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Fix total() of a basket counting one too many\n\nStart the sum at 0.")
    commits["fix"] = git(repo, "rev-parse", "HEAD").strip()
    write(repo, {"README.md": "# toyshop\n\nPrices, baskets and discounts.\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Describe the project")
    commits["docs"] = git(repo, "rev-parse", "HEAD").strip()
    write(
        repo,
        {
            "toyshop/__init__.py": MODULE
            + "\n\ndef average(prices):\n    return total(prices) / len(prices)\n",
            "tests/test_toyshop.py": TESTS.replace("def test_total():", "def test_total_small():"),
        },
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Add average() and rename a test")
    commits["refactor"] = git(repo, "rev-parse", "HEAD").strip()
    return commits
