"""The one renderer: transcripts in VT Code's tool format whose edits re-apply to the after-state."""

from __future__ import annotations

from pathlib import Path

from vtforge import gitrepo
from vtforge.corpus.demo import DEMO_COMMITS, build_commit_pack, build_github_pack
from vtforge.corpus.render import (
    apply_tool_calls,
    codex_patch,
    render_text,
    rollout_record,
    tool_calls_in,
)
from vtforge.corpus.sources import commit_pack_records
from vtforge.vtcode.patches import edits_from_tool_call, parse_unified_diff


def _tree(repo: Path, commit: str) -> dict[str, str]:
    return {p: gitrepo.show(repo, commit, p).decode() for p in gitrepo.list_files(repo, commit)}


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
        assert calls and {c.name for c in calls} <= {"edit_file", "create_file", "delete_file", "write_file"}
        assert apply_tool_calls(_tree(repo, parent), calls) == _tree(repo, commit)


def test_search_replace_needs_unique_old_text(tmp_path: Path) -> None:
    before = "x = 1\n" * 30 + "y = 2\n" + "x = 1\n" * 30
    after = "x = 1\n" * 30 + "y = 3\n" + "x = 1\n" * 30
    twice = "x = 1\ny = 2\n" * 10
    repo = build_commit_pack(
        tmp_path / "r",
        [
            ("init", {"LICENSE": "MIT License", "a.py": before, "b.py": twice}),
            ("edit", {"a.py": after, "b.py": twice.replace("y = 2", "y = 5", 1)}),
        ],
    )
    (record,) = commit_pack_records(repo)
    calls = tool_calls_in(render_text(record))
    for call in calls:
        if call.name == "edit_file":
            source = before if call.arguments["path"] == "a.py" else twice
            assert source.count(call.arguments["old_str"]) == 1
    state = apply_tool_calls({"a.py": before, "b.py": twice, "LICENSE": "MIT License"}, calls)
    assert state["a.py"] == after and state["b.py"] == twice.replace("y = 2", "y = 5", 1)


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


def test_github_pack_renders_issue_review_and_patch(tmp_path: Path, workspace: Path) -> None:
    from vtforge.config import load_config
    from vtforge.corpus.sources import github_records

    (record,) = github_records(load_config(), build_github_pack(tmp_path / "pack"))
    text = render_text(record)
    assert "widget_size rounds 2.5 down to 2" in text and "<think>\nRounding half up" in text
    (call,) = tool_calls_in(text)
    assert call.name == "apply_patch" and "*** Update File: widgets/size.py" in call.arguments["input"]


def test_sft_rollouts_go_through_the_same_renderer() -> None:
    answer = (
        "<think>The accumulator starts at one.</think>\n### shop/total.py\n"
        "<<<<<<< SEARCH\n    acc = 1\n=======\n"
        "    acc = 0\n>>>>>>> REPLACE\n"
    )
    row = {
        "example_id": "r1#0",
        "rollout_id": "r1",
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
    edit, run = tool_calls_in(text)
    assert edit.name == "edit_file" and edit.arguments == {
        "path": "shop/total.py",
        "old_str": "    acc = 1\n",
        "new_str": "    acc = 0\n",
    }
    assert run.name == "run_pty_cmd" and "tests/test_total.py::test_total" in run.arguments["command"]
    assert "<think>\nThe accumulator starts at one.\n</think>" in text
    assert apply_tool_calls({"shop/total.py": "def t():\n    acc = 1\n"}, [edit])["shop/total.py"].endswith(
        "acc = 0\n"
    )
