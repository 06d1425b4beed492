"""Parsers on adversarial model outputs: never a crash, always a typed reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vtforge.selfplay.diffs import content_key, unified_diff
from vtforge.selfplay.parsing import (
    OK,
    ParseFailure,
    parse_edit,
    parse_localization,
    parse_test_edit,
)
from vtforge.selfplay.reasoning import split_reasoning

FILES = {
    "pkg/calc.py": "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n",
    "pkg/__init__.py": "",
    "tests/test_calc.py": "from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    "README.md": "calc",
}
TREE = sorted(FILES)
read = FILES.get

FIX = """### pkg/calc.py
<<<<<<< SEARCH
    return a - b
=======
    return a + b
>>>>>>> REPLACE"""


def test_reasoning_is_split_and_kept() -> None:
    split = split_reasoning("<think>try a - b first</think>\nanswer")
    assert split.reasoning == "try a - b first" and split.answer == "answer"
    assert split_reasoning("thinking without opener</think>final").answer == "final"
    kimi = split_reasoning("◁think▷hmm◁/think▷done")
    assert (kimi.reasoning, kimi.answer) == ("hmm", "done")
    open_only = split_reasoning("<think>never closed")
    assert open_only.unterminated and open_only.answer == ""


def test_edit_becomes_a_diff_that_git_applies(tmp_path: Path) -> None:
    edit = parse_edit(f"<think>the sign is wrong</think>\n```python\n{FIX}\n```", read, TREE)
    assert edit.status == OK and edit.reasoning == "the sign is wrong"
    assert edit.files == ["pkg/calc.py"] and edit.stats == (1, 1)
    for path, content in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "fix.diff").write_text(edit.diff)
    subprocess.run(["git", "-C", str(tmp_path), "apply", "fix.diff"], check=True)
    assert "return a + b" in (tmp_path / "pkg/calc.py").read_text()


def test_edits_inside_reasoning_are_never_applied() -> None:
    edit = parse_edit(f"<think>\n{FIX}\n</think>\nI am not sure.", read, TREE)
    assert edit.status == ParseFailure.NO_EDIT_BLOCKS


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", ParseFailure.EMPTY_OUTPUT),
        ("<think>still thinking about it", ParseFailure.UNTERMINATED_REASONING),
        ("I would fix the sign.", ParseFailure.NO_EDIT_BLOCKS),
        (FIX.replace(">>>>>>> REPLACE", ""), ParseFailure.UNTERMINATED_BLOCK),
        (FIX.replace("=======\n", ""), ParseFailure.MISSING_DIVIDER),
        (FIX.replace("### pkg/calc.py\n", ""), ParseFailure.NO_FILE_HEADER),
        (FIX.replace("pkg/calc.py", "../../etc/passwd"), ParseFailure.PATH_OUTSIDE_REPO),
        (FIX.replace("pkg/calc.py", "pkg/nothere.py"), ParseFailure.UNKNOWN_FILE),
        (FIX.replace("return a - b\n=", "return a / b\n="), ParseFailure.SEARCH_NOT_FOUND),
        (FIX.replace("    return a + b", "    return a - b"), ParseFailure.NO_CHANGE),
        (FIX.replace("    return a + b", "    return (a +"), ParseFailure.SYNTAX_ERROR),
        (FIX.replace("    return a - b\n", ""), ParseFailure.EMPTY_SEARCH),
        ("<<<<<<< SEARCH\n" * 50, ParseFailure.NO_FILE_HEADER),
        ("\x00\x01garbage ### <<<<<<<", ParseFailure.NO_EDIT_BLOCKS),
    ],
)
def test_malformed_outputs_give_typed_reasons(text: str, reason: ParseFailure) -> None:
    assert parse_edit(text, read, TREE).status == reason


def test_tolerated_variations() -> None:
    sloppy = FIX.replace("### pkg/calc.py", "### `calc.py`").replace(
        "    return a - b\n=", "    return a - b   \n="
    )
    edit = parse_edit("Here you go:\n" + sloppy, read, TREE)
    assert edit.status == OK and edit.files == ["pkg/calc.py"]
    two = FIX + "\n\n" + FIX.replace("a - b", "a * b", 1).replace("a + b", "b * a")
    both = parse_edit(two, read, TREE)
    assert both.ok and both.new["pkg/calc.py"].count("a + b") == 1 and "b * a" in both.new["pkg/calc.py"]
    created = parse_edit("### pkg/extra.py\n<<<<<<< SEARCH\n=======\nX = 1\n>>>>>>> REPLACE", read, TREE)
    assert (
        created.ok
        and created.diff.startswith("diff --git a/pkg/extra.py")
        and "new file mode" in created.diff
    )


def test_equivalent_patches_share_a_key() -> None:
    plain = parse_edit(FIX, read, TREE)
    commented = parse_edit(FIX.replace("    return a + b", "    return a + b  # fixed"), read, TREE)
    different = parse_edit(FIX.replace("a + b", "b + a"), read, TREE)
    assert plain.key == commented.key != different.key
    assert content_key({"x.txt": "a \n\nb"}) == content_key({"x.txt": "a\nb\n"})


def test_no_trailing_newline_round_trips(tmp_path: Path) -> None:
    diff = unified_diff("f.txt", "a\nb", "a\nc")
    assert "\\ No newline at end of file" in diff
    (tmp_path / "f.txt").write_text("a\nb")
    (tmp_path / "p.diff").write_text(diff)
    subprocess.run(["git", "apply", "p.diff"], cwd=tmp_path, check=True)
    assert (tmp_path / "f.txt").read_text() == "a\nc"


def test_localization_corrects_against_the_tree() -> None:
    text = "<think>calc</think>\n1. `calc.py`\n- tests/test_calc.py\n* src/missing.py\nREADME.md\npkg/calc.py"
    loc = parse_localization(text, TREE, limit=2)
    assert loc.status == OK and loc.files == ["pkg/calc.py", "tests/test_calc.py"]
    assert "src/missing.py" in loc.dropped
    assert parse_localization("nothing useful here", TREE).status == ParseFailure.NO_FILES
    assert parse_localization("", TREE).status == ParseFailure.EMPTY_OUTPUT


def test_testwriter_finds_the_new_test() -> None:
    add_test = (
        "### tests/test_calc.py\n<<<<<<< SEARCH\ndef test_mul():\n    assert mul(2, 3) == 6\n=======\n"
        "def test_mul():\n    assert mul(2, 3) == 6\n\n\ndef test_add():\n    from pkg.calc import add\n"
        "    assert add(2, 3) == 5\n>>>>>>> REPLACE"
    )
    test = parse_test_edit(add_test, read, TREE)
    assert test.status == OK and test.path == "tests/test_calc.py" and test.names == ["test_add"]
    nothing_new = add_test.split("\n\n\ndef test_add")[0] + "  # same\n>>>>>>> REPLACE"
    assert parse_test_edit(nothing_new, read, TREE).status == ParseFailure.NO_NEW_TEST
    assert parse_test_edit(add_test + "\n" + FIX, read, TREE).status == ParseFailure.MULTIPLE_TEST_FILES
