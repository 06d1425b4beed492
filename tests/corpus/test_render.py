"""The one renderer: transcripts in the pinned VT Code's tool format whose patches re-apply to the
after-state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vtforge import gitrepo
from vtforge.corpus.demo import DEMO_COMMITS, build_commit_pack, build_github_pack
from vtforge.corpus.sources import commit_pack_records
from vtforge.vtcode.patches import edits_from_tool_call, parse_unified_diff
from vtforge.vtcode.render import (
    EXEC_TOOL,
    PATCH_TOOL,
    TOOLS,
    VTCODE_TOOLS_VERSION,
    RenderError,
    apply_patch_text,
    apply_tool_calls,
    codex_patch,
    messages_for,
    render_text,
    tool_calls_in,
    verify,
)
from vtforge.warehouse.sft_vtcode import rollout_record

# `USER=root vtcode schema tools` of the pinned build, committed with the other recordings
SCHEMA_DUMP = (
    Path(__file__).resolve().parents[1]
    / "vtcode"
    / "recordings"
    / f"schema-tools-{VTCODE_TOOLS_VERSION}.json"
)


def _tree(repo: Path, commit: str) -> dict[str, str]:
    return {p: gitrepo.show(repo, commit, p).decode() for p in gitrepo.list_files(repo, commit)}


def _valid(name: str, arguments: dict[str, Any]) -> None:
    """The arguments fit the declared tool: known keys only, required ones present, types right."""
    (tool,) = [t["function"] for t in TOOLS if t["function"]["name"] == name]
    params = tool["parameters"]
    assert set(arguments) <= set(params["properties"]), f"{name}: unknown arguments {set(arguments)}"
    assert set(params.get("required", [])) <= set(arguments)
    if "anyOf" in params:
        assert any(set(alt["required"]) <= set(arguments) for alt in params["anyOf"])
    kinds = {"string": str, "integer": int, "boolean": bool}
    for key, value in arguments.items():
        assert isinstance(value, kinds[params["properties"][key]["type"]])


def test_rendered_commits_reapply_to_the_after_state(tmp_path: Path) -> None:
    repo = build_commit_pack(tmp_path / "toycalc", DEMO_COMMITS)
    records = list(commit_pack_records(repo))
    assert len(records) == len(DEMO_COMMITS) - 1  # the root commit has no parent
    for record in records:
        commit = record["id"].rsplit("@", 1)[1]
        parent = gitrepo.git(repo, "rev-parse", f"{commit}^").strip()
        text = render_text(record)
        assert text.startswith("<|im_start|>user\n" + record["instruction"])
        calls = tool_calls_in(text)
        assert [c.name for c in calls] == [PATCH_TOOL]
        _valid(PATCH_TOOL, calls[0].arguments)
        assert calls[0].arguments["input"].startswith("*** Begin Patch\n")
        assert apply_tool_calls(_tree(repo, parent), calls) == _tree(repo, commit)
        verify(record, text)


def test_repeated_lines_get_enough_context_to_land_where_they_belong() -> None:
    """VT Code searches a hunk forward from the previous one: the renderer widens the context (or
    falls back to one whole-file hunk) until the patch lands on the right copy."""
    before = "x = 1\n" * 30 + "y = 2\n" + "x = 1\n" * 30
    after = "x = 1\n" * 30 + "y = 3\n" + "x = 1\n" * 29 + "x = 9\n"
    twice = "x = 1\ny = 2\n" * 10
    files = [
        {"path": "a.py", "before": before, "after": after},
        {
            "path": "b.py",
            "before": twice,
            "after": twice[: len(twice) // 2] + twice[len(twice) // 2 :].replace("y = 2", "y = 5", 1),
        },
    ]
    record = {"instruction": "fix", "files": files}
    (call,) = tool_calls_in(render_text(record))
    state = apply_tool_calls({"a.py": before, "b.py": twice}, [call])
    assert state == {f["path"]: f["after"] for f in files}


def test_the_applier_follows_vtcode_rules() -> None:
    """Forward search from the previous hunk, ``@@`` anchors, trailing newline kept, End of File."""
    text = "def a():\n    return 1\n\ndef b():\n    return 1\n"
    anchored = (
        "*** Begin Patch\n*** Update File: m.py\n@@ def b():\n-    return 1\n+    return 2\n*** End Patch\n"
    )
    assert apply_patch_text({"m.py": text}, anchored)["m.py"] == text[: -len("1\n")] + "2\n"
    bare = anchored.replace("@@ def b():", "@@")
    assert apply_patch_text({"m.py": text}, bare)["m.py"].startswith("def a():\n    return 2\n")
    eof = "*** Begin Patch\n*** Update File: n\n@@\n a\n*** End of File\n*** End Patch\n"
    assert apply_patch_text({"n": "a"}, eof)["n"] == "a\n"
    with pytest.raises(RenderError):
        apply_patch_text(
            {"m.py": text}, "*** Begin Patch\n*** Update File: m.py\n@@\n-nope\n+x\n*** End Patch\n"
        )
    with pytest.raises(RenderError):
        apply_patch_text({}, "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b\n")  # unified diffs are refused


def test_an_after_state_vtcode_cannot_write_is_a_render_mismatch() -> None:
    """VT Code's update folds a final blank line into the newline: such a record is refused."""
    record = {"instruction": "pad", "files": [{"path": "p.py", "before": "a = 1\n", "after": "a = 2\n\n"}]}
    with pytest.raises(RenderError):
        verify(record, render_text(record))


def test_a_file_holding_the_closing_tag_survives(tmp_path: Path) -> None:
    repo = build_commit_pack(
        tmp_path / "r",
        [("init", {"LICENSE": "MIT License", "t.txt": "a\n"}), ("tag", {"t.txt": "a\n</tool_call> b\n"})],
    )
    (record,) = commit_pack_records(repo)
    calls = tool_calls_in(render_text(record))
    assert apply_tool_calls({"t.txt": "a\n"}, calls)["t.txt"] == "a\n</tool_call> b\n"


def test_codex_patch_counts_what_the_diff_changes(tmp_path: Path) -> None:
    """The apply_patch body reads back, with VT Code's own parser, as the diff's files and lines."""
    repo = build_commit_pack(tmp_path / "toycalc", DEMO_COMMITS)
    commits = gitrepo.git(repo, "rev-list", "--reverse", "HEAD").split()
    diff = gitrepo.diff(repo, commits[0], commits[-1])
    expected = parse_unified_diff(diff)
    got = edits_from_tool_call("apply_patch", {"input": codex_patch(diff)})
    assert sorted(got.files) == sorted(expected.files)
    assert (got.added, got.removed) == (expected.added, expected.removed)


def test_a_diff_of_binary_files_only_renders_nothing() -> None:
    binary = "diff --git a/logo.png b/logo.png\nBinary files a/logo.png and b/logo.png differ\n"
    with pytest.raises(RenderError):
        codex_patch(binary)


def test_crlf_files_keep_their_line_endings() -> None:
    before, after = "a = 1\r\nb = 2\r\nc = 3\r\n", "a = 1\r\nb = 5\r\nc = 3\r\n"
    record = {"instruction": "crlf", "files": [{"path": "w.py", "before": before, "after": after}]}
    text = render_text(record)
    verify(record, text)
    assert "\\r" not in text  # the envelope holds lines; VT Code writes the file's own ending


def test_codex_patch_applies_to_the_before_state(tmp_path: Path) -> None:
    repo = build_commit_pack(tmp_path / "toycalc", DEMO_COMMITS)
    commits = gitrepo.git(repo, "rev-list", "--reverse", "HEAD").split()
    patch = codex_patch(gitrepo.diff(repo, commits[0], commits[-1]))
    assert apply_patch_text(_tree(repo, commits[0]), patch) == _tree(repo, commits[-1])


def test_github_pack_renders_issue_review_and_patch(tmp_path: Path, workspace: Path) -> None:
    from vtforge.config import load_config
    from vtforge.corpus.sources import github_records

    (record,) = github_records(load_config(), build_github_pack(tmp_path / "pack"))
    text = render_text(record)
    assert "widget_size rounds 2.5 down to 2" in text and "<think>\nRounding half up" in text
    (call,) = tool_calls_in(text)
    assert call.name == PATCH_TOOL and "*** Update File: widgets/size.py" in call.arguments["input"]


def test_sft_rollouts_go_through_the_same_renderer() -> None:
    answer = (
        "<think>The accumulator starts at one.</think>\n### shop/total.py\n"
        "<<<<<<< SEARCH\n    acc = 1\n=======\n"
        "    acc = 0\n>>>>>>> REPLACE\n"
    )
    row = {
        "example_id": "r1#0",
        "rollout_id": "r1",
        "role": "bugfixer",
        "synthetic": True,
        "messages": [
            {"role": "system", "content": "You fix bugs."},
            {"role": "user", "content": "Issue:\ntotal is one too high"},
            {"role": "assistant", "content": answer},
        ],
        "fail_to_pass": ["tests/test_total.py::test_total"],
        "license": "MIT",
    }
    record = rollout_record(row)
    assert record is not None and record["synthetic"]
    text = render_text(record)
    verify(record, text)
    edit, run = tool_calls_in(text)
    envelope = "*** Update File: shop/total.py\n@@\n-    acc = 1\n+    acc = 0\n"
    assert edit.name == PATCH_TOOL and edit.arguments == {
        "input": f"*** Begin Patch\n{envelope}*** End Patch\n"
    }
    assert run.name == EXEC_TOOL and "tests/test_total.py::test_total" in run.arguments["cmd"]
    _valid(EXEC_TOOL, run.arguments)
    result = json.loads(messages_for(record)[-1]["content"])
    assert result["exit_code"] == 0 and "1 passed" in result["output"]
    assert "<think>\nThe accumulator starts at one.\n</think>" in text
    patched = apply_tool_calls({"shop/total.py": "def t():\n    acc = 1\n"}, [edit])
    assert patched["shop/total.py"] == "def t():\n    acc = 0\n"
    assert rollout_record({**row, "role": "testwriter"})["tests"] is None  # type: ignore[index]


def test_declared_tools_match_the_pinned_binary() -> None:
    """Names, argument names, types and required sets equal ``vtcode schema tools`` of the pinned
    build (its output, recorded under tests/vtcode/recordings)."""
    dump = json.loads(SCHEMA_DUMP.read_text())
    assert dump["version"] == VTCODE_TOOLS_VERSION

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items() if k != "description"}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return value

    theirs = {t["name"]: shape(t["parameters"]) for t in dump["tools"]}
    ours = {t["function"]["name"]: shape(t["function"]["parameters"]) for t in TOOLS}
    assert ours == theirs
