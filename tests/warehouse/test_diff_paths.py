"""One rule for the paths a diff changes: the warehouse macro ``diff_files`` (``tasks.gold_files``)
and ``vtforge.tasks.diffs.changed_paths`` (localization accuracy in skill evaluations) agree."""

from __future__ import annotations

import duckdb
import pytest

from vtforge.config import load_config
from vtforge.sandbox.patches import files_in_patch
from vtforge.tasks.diffs import changed_paths
from vtforge.warehouse.models import prepare

EDIT = "diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
ADD = (
    "diff --git a/pkg/new.py b/pkg/new.py\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1 @@\n+y = 1\n"
)
DELETE = (
    "diff --git a/old.py b/old.py\ndeleted file mode 100644\n"
    "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-z = 1\n"
)
RENAME = "diff --git a/src/x.py b/src/y.py\nsimilarity index 100%\nrename from src/x.py\nrename to src/y.py\n"

CASES = {
    "edit": (EDIT, ["pkg/a.py"]),
    "add": (ADD, ["pkg/new.py"]),
    "delete": (DELETE, ["old.py"]),
    "rename": (RENAME, ["src/y.py"]),
    "two files": (EDIT + ADD, ["pkg/a.py", "pkg/new.py"]),
    "empty": ("", []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sql_and_python_agree(workspace, case: str) -> None:
    diff, expected = CASES[case]
    con = duckdb.connect()
    prepare(con, load_config())
    (sql,) = con.execute("SELECT diff_files(?)", [diff]).fetchone()
    con.close()
    assert changed_paths(diff) == expected
    assert sorted(sql) == expected


def test_a_reset_also_names_the_old_side_of_a_rename() -> None:
    """Resetting a checkout before a run needs every path a patch names, not only what it changes."""
    assert files_in_patch(RENAME) == ["src/x.py", "src/y.py"]
    assert files_in_patch(DELETE) == ["old.py"]


def test_a_plain_unified_diff_follows_the_same_rule() -> None:
    """A model's answer may lack ``diff --git`` headers; its ---/+++ pairs give the same paths."""
    plain = "\n".join(line for line in (EDIT + DELETE).splitlines() if not line.startswith("diff --git"))
    assert changed_paths(plain) == ["pkg/a.py", "old.py"]
