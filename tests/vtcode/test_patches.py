"""Edit tool calls → files and lines changed (apply_patch, edit_file, search_replace, diffs)."""

from __future__ import annotations

import json

from tests.vtcode.vtcode_files import PATCH
from vtforge.vtcode.patches import edits_from_tool_call, parse_codex_patch


def test_codex_patch_counts_every_section() -> None:
    body = """*** Begin Patch
*** Add File: docs/new.md
+# Title
+
+text
*** Update File: src/app.py
*** Move to: src/main.py
@@ def run():
-    old()
-    older()
+    new()
 unchanged context
@@ def stop():
+    cleanup()
*** Delete File: src/legacy.py
*** End Patch"""
    edits = parse_codex_patch(body)
    assert edits.files == ["docs/new.md", "src/app.py", "src/main.py", "src/legacy.py"]
    assert (edits.added, edits.removed) == (5, 2)


def test_apply_patch_arguments_as_object_or_json_text() -> None:
    as_object = edits_from_tool_call("apply_patch", {"input": PATCH})
    as_text = edits_from_tool_call("apply_patch", json.dumps({"input": PATCH}))
    assert as_object.files == as_text.files == ["src/calc.py", "tests/test_calc.py"]
    assert (as_object.added, as_object.removed) == (as_text.added, as_text.removed) == (5, 1)


def test_older_edit_tools() -> None:
    edit = edits_from_tool_call(
        "edit_file", {"path": "a.py", "old_str": "x = 1\ny = 2\n", "new_str": "x = 3\n"}
    )
    assert (edit.files, edit.added, edit.removed) == (["a.py"], 1, 2)
    replace = edits_from_tool_call(
        "search_replace", {"file_path": "b.py", "search": "foo", "replace": "bar\nbaz\nqux"}
    )
    assert (replace.files, replace.added, replace.removed) == (["b.py"], 3, 1)
    write = edits_from_tool_call("write_file", {"path": "c.txt", "content": "1\n2\n3\n"})
    assert (write.files, write.added, write.removed) == (["c.txt"], 3, 0)


def test_unified_diff_given_to_apply_patch() -> None:
    diff = """--- a/pkg/util.py
+++ b/pkg/util.py
@@ -1,3 +1,3 @@
 import os
-import sys
+import re
+import json
"""
    edits = edits_from_tool_call("apply_patch", {"patch": diff})
    assert (edits.files, edits.added, edits.removed) == (["pkg/util.py"], 2, 1)


def test_tools_that_edit_nothing() -> None:
    assert edits_from_tool_call("read_file", {"path": "src/calc.py"}).empty
    assert edits_from_tool_call("run_pty_cmd", "ls -la").empty
    assert edits_from_tool_call(None, None).empty
