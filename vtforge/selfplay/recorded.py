"""Recorded completions for the ``replay`` engine: clearly labelled SYNTHETIC model outputs.

No model wrote these. For each task they are made from its gold patch and its tests, so the whole
self-play loop (parsing, retries, the matrix, selection, rewards, the false-positive catalog) runs
on a CPU with known answers. Every record has ``"synthetic": true`` and a ``labels.kind``:

- localizer: the gold patch's files (plus a distractor), the test file of a FAIL_TO_PASS test;
- bugfixer: ``gold`` (the gold patch as SEARCH/REPLACE, sometimes reformatted or with a comment:
  the same normalised patch), ``wrong`` (the gold edit with an operator or constant flipped: a
  plausible fix that is not one), ``malformed`` (unterminated block, SEARCH text not in the file,
  reasoning only: parse failures that exercise retries);
- testwriter: ``good_test`` (a FAIL_TO_PASS test copied under a new name), ``weak_test`` (checks
  only that the buggy line is gone: passes for the gold AND the wrong fixes), ``bad_test`` (passes
  before the fix, or can never pass), ``malformed``;
- synthesis: the gold patch.

Every third task is *false-positive prone*: its TestWriter only writes weak and bad tests and the
wrong fix is proposed more often than the gold one, so selection picks a patch that passes every
valid generated test and fails the task's own tests. That feeds the false-positive catalog; the
next round injects the counterexample and the gold patch wins.
"""

from __future__ import annotations

import ast
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtforge.selfplay.parsing import test_functions
from vtforge.selfplay.task import RepoView, SelfplayTask

SOURCE = "vtforge.selfplay.recorded"


@dataclass(frozen=True)
class Hunk:
    path: str
    search: list[str]
    replace: list[str]
    removed: list[str]
    added: list[str]


def gold_hunks(diff: str) -> list[Hunk]:
    """Hunks of a unified diff as (search, replace) line lists; new files have an empty search."""
    hunks: list[Hunk] = []
    path = None
    search: list[str] = []
    replace: list[str] = []
    removed: list[str] = []
    added: list[str] = []
    in_hunk = False

    def close() -> None:
        if in_hunk and path:
            hunks.append(Hunk(path, list(search), list(replace), list(removed), list(added)))

    for line in diff.splitlines():
        if line.startswith("diff --git"):
            close()
            in_hunk, path = False, None
        elif line.startswith("+++ "):
            name = line[4:].split("\t", 1)[0].strip()
            path = name[2:] if name.startswith("b/") else (None if name == "/dev/null" else name)
        elif line.startswith("@@"):
            close()
            in_hunk = True
            search, replace, removed, added = [], [], [], []
        elif in_hunk and line.startswith("\\"):
            continue
        elif in_hunk and line.startswith("-"):
            search.append(line[1:])
            removed.append(line[1:])
        elif in_hunk and line.startswith("+"):
            replace.append(line[1:])
            added.append(line[1:])
        elif in_hunk and (line.startswith(" ") or line == ""):
            search.append(line[1:])
            replace.append(line[1:])
    close()
    return hunks


def blocks_text(hunks: Iterable[Hunk], *, replace_override: dict[int, list[str]] | None = None) -> str:
    out = []
    for i, h in enumerate(hunks):
        replace = (replace_override or {}).get(i, h.replace)
        out.append(
            f"### {h.path}\n<<<<<<< SEARCH\n"
            + "".join(x + "\n" for x in h.search)
            + "=======\n"
            + "".join(x + "\n" for x in replace)
            + ">>>>>>> REPLACE"
        )
    return "```python\n" + "\n\n".join(out) + "\n```"


_FLIPS = [
    (" + ", " - "),
    (" + ", " * "),
    (" - ", " + "),
    (" <= ", " < "),
    (" < ", " <= "),
    (" >= ", " > "),
    (" > ", " >= "),
    (" == ", " != "),
    (" != ", " == "),
    (" and ", " or "),
    (" or ", " and "),
    ("True", "False"),
    ("False", "True"),
    ("min(", "max("),
    ("max(", "min("),
    (" * ", " / "),
    ("[1:]", "[:-1]"),
]


def wrong_variants(h: Hunk, limit: int = 2) -> list[list[str]]:
    """Replacement lines with one operator or constant flipped in an added line (still valid)."""
    out: list[list[str]] = []
    added_at = [i for i, line in enumerate(h.replace) if line in h.added and line.strip()]
    for i in added_at:
        line = h.replace[i]
        options = [line.replace(a, b, 1) for a, b in _FLIPS if a in line]
        options += [re.sub(r"\b(\d+)\b", lambda m: str(int(m.group(1)) + 1), line, count=1)]
        for option in options:
            if option == line or option in h.removed:
                continue
            variant = list(h.replace)
            variant[i] = option
            if variant not in out:
                out.append(variant)
            if len(out) >= limit:
                return out
    if not out and h.added:  # nothing to flip: negate the first added return value
        for i, line in enumerate(h.replace):
            if line in h.added and line.strip().startswith("return "):
                variant = list(h.replace)
                variant[i] = line.replace("return ", "return not ", 1)
                out.append(variant)
                break
    return out


def _insert_test(test_file: str, content: str, function_source: str) -> str:
    """A SEARCH/REPLACE block appending ``function_source`` after the file's last lines."""
    lines = content.rstrip("\n").splitlines()
    tail = lines[-3:] if len(lines) >= 3 else lines
    return (
        f"### {test_file}\n<<<<<<< SEARCH\n"
        + "".join(x + "\n" for x in tail)
        + "=======\n"
        + "".join(x + "\n" for x in tail)
        + "\n\n"
        + function_source.rstrip("\n")
        + "\n>>>>>>> REPLACE"
    )


def _renamed(source: str, old: str, new: str) -> str:
    return re.sub(rf"\bdef {re.escape(old)}\b", f"def {new}", source, count=1)


def _function_source(content: str, name: str) -> str | None:
    """Source of a module-level test function (decorators included), dedented."""
    try:
        tree = ast.parse(content)
    except SyntaxError:
        return None
    lines = content.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            return "\n".join(lines[start : node.end_lineno])
    return None


def _record(task: SelfplayTask, role: str, index: int, completion: str, kind: str) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "role": role,
        "sample_index": index,
        "completion": completion,
        "synthetic": True,
        "labels": {"kind": kind, "source": SOURCE},
    }


def _think(rng: random.Random, text: str) -> str:
    return f"<think>{text}</think>\n" if rng.random() < 0.7 else ""


def records_for_task(
    task: SelfplayTask, *, patches: int = 40, tests: int = 40, seed: int = 0, fp_prone: bool = False
) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}/{task.task_id}")
    view = RepoView(task.repo_dir, task.base_commit)
    hunks = [h for h in gold_hunks(task.gold_patch) if h.path in view.tree_set]
    records: list[dict[str, Any]] = []
    gold_files = sorted({h.path for h in hunks})
    distractors = [p for p in view.source_files() if p not in gold_files]
    loc = gold_files + distractors[:1]
    records.append(
        _record(
            task,
            "localizer",
            0,
            _think(rng, "The issue names behaviour in these modules.") + "\n".join(loc),
            "gold_files",
        )
    )

    # --- TestWriter material: F2P tests that exist at the base commit ---------------------------
    f2p_by_file: dict[str, list[str]] = {}
    for node in task.fail_to_pass:
        path, _, name = node.partition("::")
        if path in view.tree_set and "::" not in name:
            f2p_by_file.setdefault(path, []).append(name.split("[", 1)[0])
    p2p_by_file: dict[str, list[str]] = {}
    for node in task.pass_to_pass:
        path, _, name = node.partition("::")
        if path in view.tree_set and "::" not in name:
            p2p_by_file.setdefault(path, []).append(name.split("[", 1)[0])
    added_files = {h.path: "\n".join(h.replace) + "\n" for h in gold_hunks(task.test_patch) if not h.search}
    imported: dict[str, list[str]] = {}
    for node in task.fail_to_pass:
        path, _, name = node.partition("::")
        if path in added_files and "::" not in name:
            src = _function_source(added_files[path], name.split("[", 1)[0])
            if src:
                heads = [x for x in added_files[path].splitlines() if x.startswith(("import ", "from "))]
                imported.setdefault(path, []).append("\n".join(heads) + "\n\n\n" + src)
    test_file = next(iter(f2p_by_file), None) or next(iter(p2p_by_file), None)
    if test_file is None:
        test_file = next((p for p in view.test_files() if p.rsplit("/", 1)[-1].startswith("test_")), None)
    # the test localization names where the task's own tests live (class-based ones too), else the
    # file the TestWriter material comes from
    located = (n.partition("::")[0] for n in task.fail_to_pass)
    localized_test = next((path for path in located if path in view.tree_set), None) or test_file
    if localized_test:
        records.append(_record(task, "localizer", 1, localized_test, "test_file"))

    # --- BugFixer ------------------------------------------------------------------------------
    gold_text = blocks_text(hunks) if hunks else ""
    wrongs = [blocks_text(hunks, replace_override={0: v}) for v in wrong_variants(hunks[0])] if hunks else []
    plan: list[str] = []
    fp_cycle = ("wrong", "wrong", "gold", "wrong", "malformed")  # the wrong fix always outvotes the gold
    for i in range(patches):
        draw = rng.random()
        if fp_prone:
            plan.append(fp_cycle[i % len(fp_cycle)])
        else:
            plan.append("gold" if draw < 0.45 else "wrong" if draw < 0.8 else "malformed")
    if patches and not fp_prone:
        plan[0] = "gold"
    for i, kind in enumerate(plan):
        if kind == "gold" and gold_text:
            text = _think(rng, "The failing behaviour comes from this line; restore the intended logic.")
            text += (
                gold_text
                if rng.random() < 0.6
                else gold_text.replace("```python", "Here is the fix:\n```python")
            )
        elif kind == "wrong" and wrongs:
            text = (
                _think(rng, "Adjust the computation in the suspicious line.")
                + wrongs[0 if fp_prone else i % len(wrongs)]
            )
        else:
            kind = "malformed"
            text = rng.choice(
                [
                    "<think>I need to look at the code more carefully before I edit anything",
                    gold_text.replace(">>>>>>> REPLACE", "", 1) if gold_text else "no idea",
                    f"### {hunks[0].path if hunks else 'nowhere.py'}\n<<<<<<< SEARCH\n"
                    "this line is not in the file\n"
                    "=======\npass\n>>>>>>> REPLACE",
                    "I would change the function so that it behaves as described.",
                ]
            )
        records.append(_record(task, "bugfixer", i, text, kind))

    # --- TestWriter ----------------------------------------------------------------------------
    content = view.read(test_file) if test_file else None
    goods: list[str] = []
    bads: list[str] = []
    weak: str | None = None
    if test_file and content is not None:
        for name in f2p_by_file.get(test_file, []):
            src = _function_source(content, name)
            if src:
                goods.append(src)
        for sources in imported.values():
            goods.extend(sources)
        for name in p2p_by_file.get(test_file, []):
            src = _function_source(content, name)
            if src:
                bads.append(src)
        for h in hunks[:1]:
            buggy = next((line.strip() for line in h.removed if line.strip()), None)
            base_src = view.read(h.path) or ""
            if buggy and base_src.count(buggy) == 1 and "'''" not in buggy:
                depth = test_file.count("/")
                weak = (
                    "def test_reported_line_is_fixed():\n"
                    "    from pathlib import Path\n\n"
                    f"    root = Path(__file__).resolve().parents[{depth}]\n"
                    f"    source = (root / {h.path!r}).read_text()\n"
                    f"    assert {buggy!r} not in source\n"
                )
    existing = set(test_functions(content or ""))
    for i in range(tests):
        draw = rng.random()
        options = []
        if goods and not fp_prone:
            options += ["good"] * 5
        if weak:
            options += ["weak"] * (5 if fp_prone else 1)
        if bads:
            options += ["bad_passes"] * 2
        options += ["bad_never", "malformed"]
        kind = options[int(draw * len(options))] if i else (options[0] if options else "malformed")
        fresh = f"test_vtf_repro_{i}"
        while fresh in existing:
            fresh += "_"
        if kind == "good" and test_file:
            src = goods[i % len(goods)]
            old = re.search(r"def (\w+)", src).group(1)
            body = _insert_test(test_file, content or "", _renamed(src, old, fresh))
            text, label = _think(rng, "Reproduce the reported failure.") + body, "good_test"
        elif kind == "weak" and test_file and weak:
            text = _insert_test(test_file, content or "", weak.replace("test_reported_line_is_fixed", fresh))
            label = "weak_test"
        elif kind == "bad_passes" and test_file:
            src = bads[i % len(bads)]
            old = re.search(r"def (\w+)", src).group(1)
            text, label = _insert_test(test_file, content or "", _renamed(src, old, fresh)), "bad_test"
        elif kind == "bad_never" and test_file:
            text = _insert_test(test_file, content or "", f"def {fresh}():\n    assert {i} == {i + 1}\n")
            label = "bad_test"
        else:
            text = rng.choice(["<think>Maybe a test of the edge case", "def test_x():\n    assert True\n"])
            label = "malformed"
        records.append(_record(task, "testwriter", i, text, label))

    if gold_text:
        records.append(
            _record(task, "synthesis", 0, _think(rng, "Candidate 1 is right.") + gold_text, "gold")
        )
    return records


def make_records(
    tasks: Sequence[SelfplayTask], *, patches: int = 40, tests: int = 40, seed: int = 0, fp_every: int = 3
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, task in enumerate(tasks):
        out.extend(
            records_for_task(
                task, patches=patches, tests=tests, seed=seed, fp_prone=fp_every > 0 and i % fp_every == 0
            )
        )
    return out


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            count += 1
    tmp.replace(path)
    return count
