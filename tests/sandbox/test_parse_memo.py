"""The sandbox's parse memo: failures formatted exactly as pytest formats them, one parse a file."""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from _pytest._code import code, source
from _pytest._code.code import ExceptionInfo

from vtforge.sandbox.inside import INSIDE_DIR

sys.path.insert(0, str(INSIDE_DIR))
import parse_memo  # the sandbox-side module (stdlib and pytest only)

MODULE = """\
def helper(value):
    total = value + 1
    assert total == 10, (
        "a statement over lines"
    )


def other(value):
    # a comment pytest's statement range has to step over
    if value:
        raise ValueError(f"bad {value}")
"""


def formatter(tmp_path: Path) -> Callable[[str, int], str]:
    path = tmp_path / "failing_module.py"
    path.write_text(MODULE)
    spec = importlib.util.spec_from_file_location("failing_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def formatted(name: str, value: int) -> str:
        try:
            getattr(module, name)(value)
        except Exception:
            info = ExceptionInfo.from_current()
        else:
            raise AssertionError("no failure")
        return "\n".join(str(info.getrepr(style=style)) for style in ("long", "short"))

    return formatted


def test_failures_read_the_same_and_each_source_is_parsed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    formatted = formatter(tmp_path)
    calls = [("helper", 1), ("other", 3), ("helper", 2), ("other", 5)]
    parses = []
    real_parse = ast.parse

    def counting_parse(*args: object, **kwargs: object) -> ast.AST:
        parses.append(args[0])
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(source.ast, "parse", counting_parse)
    expected = [formatted(*call) for call in calls]
    unmemoized = len(parses)
    assert unmemoized >= 2 * len(calls)  # pytest's own: the module again for every failure

    monkeypatch.setattr(source, "getstatementrange_ast", source.getstatementrange_ast)
    monkeypatch.setattr(code, "getstatementrange_ast", code.getstatementrange_ast)
    assert parse_memo.install()
    assert not parse_memo.install()  # once per process
    parses.clear()
    assert [formatted(*call) for call in calls] == expected
    assert len(parses) == len(set(parses)) < unmemoized  # each distinct text parsed once
