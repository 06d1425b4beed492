"""AST mutations: every kind appears, each parses and changes only its node, order follows the seed."""

from __future__ import annotations

import ast
from collections import Counter

from tests.tasks.toypkg import MODULE
from vtforge.tasks.synth.mutations import candidates_in_files, candidates_in_source, mutable_file
from vtforge.tasks.synth.pipeline import order_candidates, relevant_tests

SOURCE = (
    MODULE.encode()
    + b'''

def pick(items, key=None):
    """Docstring: 1 < 2 is not mutated."""
    if not items:
        return None
    if key is None or key in items:
        return sorted(items, key=len)[0]
    return max(key, len(items))
'''
)


def test_every_kind_is_found_and_each_mutation_parses() -> None:
    found = candidates_in_source("toyshop/__init__.py", SOURCE)
    kinds = Counter(m.kind for m in found)
    assert set(kinds) == {
        "flip_comparison",
        "off_by_one",
        "flip_arithmetic",
        "flip_boolean",
        "remove_condition",
        "swap_arguments",
        "drop_return",
    }
    original = ast.dump(ast.parse(SOURCE))
    for mutation in found:
        mutated = mutation.apply(SOURCE)
        assert ast.dump(ast.parse(mutated)) != original
        assert SOURCE[mutation.start : mutation.end].decode() == mutation.original
        assert mutated.count(b"\n") <= SOURCE.count(b"\n")  # edits in place, never reflows the file
    assert not any("Docstring" in m.original for m in found)


def test_specific_mutations_read_like_small_bugs() -> None:
    found = {(m.function, m.kind, m.original, m.replacement) for m in candidates_in_source("t.py", SOURCE)}
    assert ("clamp", "flip_comparison", "<", ">=") in found
    assert ("clamp", "off_by_one", "<", "<=") in found
    assert ("total", "off_by_one", "0", "1") in found
    assert ("total", "flip_arithmetic", "+", "-") in found
    assert ("is_bargain", "flip_boolean", "and", "or") in found
    assert ("pick", "remove_condition", "not ", "") in found
    assert ("pick", "swap_arguments", "key, len(items)", "len(items), key") in found
    assert ("first_over", "drop_return", "index", "None") in found
    guard = [
        m for m in candidates_in_source("t.py", SOURCE) if m.kind == "remove_condition" and "if" in m.original
    ]
    assert any(m.original == "    if percent <= 0:\n        return price\n" for m in guard)


def test_order_is_a_function_of_the_seed() -> None:
    found = candidates_in_files(
        {"toyshop/__init__.py": SOURCE, "tests/test_x.py": SOURCE, "setup.py": SOURCE}
    )
    assert {m.path for m in found} == {"toyshop/__init__.py"}
    first = [m.key for m in order_candidates(found, 3)]
    assert first == [m.key for m in order_candidates(list(reversed(found)), 3)]
    assert first != [m.key for m in order_candidates(found, 4)]
    assert sorted(first) == sorted(m.key for m in found)
    head = [m.kind for m in order_candidates(found, 3)[:7]]
    assert len(set(head)) == 7  # kinds interleave


def test_mutable_files_and_relevant_tests() -> None:
    assert mutable_file("pkg/core.py") and mutable_file("src/pkg/__init__.py")
    assert not mutable_file("pkg/tests/test_core.py") and not mutable_file("docs/conf.py")
    assert not mutable_file("pkg/_version.py") and not mutable_file("setup.py")
    tests = {"t/test_core.py": "import pkg.core", "t/test_util.py": "from pkg import util", "t/test_x.py": ""}
    assert relevant_tests("pkg/core.py", tests) == ["t/test_core.py"]
    assert relevant_tests("pkg/helpers.py", {**tests, "t/test_y.py": "pkg.helpers"}) == ["t/test_y.py"]
    assert relevant_tests("pkg/__init__.py", tests) == ["t/test_core.py", "t/test_util.py"]
    assert relevant_tests("pkg/__init__.py", {**tests, "t/test_x.py": "import pkg"}) is None  # all of them


def test_error_lines_are_stable_across_runs() -> None:
    from vtforge.tasks.synth.statement import error_lines

    message = (
        "    def test_x():\n>       assert f(1) is True\nE       assert False is True\n"
        "E        +  where False = <function f at 0x7fd22942ef20>(1)\n\ntests/test_x.py:3: AssertionError"
    )
    assert error_lines(message) == ["assert False is True", "+  where False = <function f>(1)"]
