"""Procedural AST mutations: small, plausible bugs in a package's functions.

Each mutation edits the bytes of one node in place (found through the AST's exact positions), so
the rest of the file keeps its formatting and the gold patch is a one- or few-line diff. Kinds:

- ``flip_comparison``  ``a < b`` → ``a >= b``, ``==`` ↔ ``!=``, ``in`` ↔ ``not in`` …
- ``off_by_one``        ``<`` ↔ ``<=``, ``>`` ↔ ``>=``; small integer constants ± 1
- ``flip_arithmetic``   ``+`` ↔ ``-``, ``*`` → ``+``, ``&`` ↔ ``|``
- ``flip_boolean``      ``and`` ↔ ``or``
- ``remove_condition``  a guard clause (``if c: return``) deleted; a ``not`` dropped; an operand of
  ``and``/``or`` dropped
- ``swap_arguments``    the first two positional arguments of a call swapped
- ``drop_return``       ``return value`` → ``return None``

A mutation is kept only if the file still parses and its AST differs from the original.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from vtforge.tasks.diffs import is_test_path

SKIP_FILES = {"setup.py", "conftest.py", "versioneer.py", "_version.py", "version.py", "__main__.py"}
SKIP_PARTS = {"docs", "doc", "examples", "benchmarks", "bench", "build", "scripts", "tools"}
MAX_SPAN_LINES = 3

_COMPARE_TOKENS = {
    ast.Eq: r"==",
    ast.NotEq: r"!=",
    ast.Lt: r"<(?!=)",
    ast.LtE: r"<=",
    ast.Gt: r">(?!=)",
    ast.GtE: r">=",
    ast.In: r"(?<!not )\bin\b",
    ast.NotIn: r"\bnot\s+in\b",
    ast.Is: r"\bis\b(?!\s+not\b)",
    ast.IsNot: r"\bis\s+not\b",
}
_NEGATED = {
    ast.Eq: "!=",
    ast.NotEq: "==",
    ast.Lt: ">=",
    ast.GtE: "<",
    ast.Gt: "<=",
    ast.LtE: ">",
    ast.In: "not in",
    ast.NotIn: "in",
    ast.Is: "is not",
    ast.IsNot: "is",
}
_BOUNDARY = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}
_ARITH = {
    ast.Add: ("+", "-"),
    ast.Sub: ("-", "+"),
    ast.Mult: ("*", "+"),
    ast.BitAnd: ("&", "|"),
    ast.BitOr: ("|", "&"),
}


@dataclass(frozen=True)
class Mutation:
    """Replace bytes ``[start, end)`` of ``path`` with ``replacement``."""

    path: str
    function: str
    kind: str
    line: int
    start: int
    end: int
    original: str
    replacement: str

    @property
    def key(self) -> str:
        text = f"{self.path}\x1f{self.start}\x1f{self.end}\x1f{self.replacement}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end :]

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "file": self.path,
            "function": self.function,
            "line": self.line,
            "original": self.original,
            "replacement": self.replacement,
        }


def mutable_file(path: str) -> bool:
    p = PurePosixPath(path)
    return (
        p.suffix == ".py"
        and not is_test_path(path)
        and p.name not in SKIP_FILES
        and not any(part in SKIP_PARTS or part.startswith(".") for part in p.parts[:-1])
        and not p.name.startswith("test")
    )


class _Offsets:
    def __init__(self, source: bytes) -> None:
        self.source = source
        self.starts = [0]
        for i, byte in enumerate(source):
            if byte == 0x0A:
                self.starts.append(i + 1)

    def at(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.at(node.lineno, node.col_offset), self.at(node.end_lineno, node.end_col_offset)

    def text(self, start: int, end: int) -> str:
        return self.source[start:end].decode("utf-8")


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    def visit(
        body: list[ast.stmt], prefix: str
    ) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{prefix}{node.name}", node
            elif isinstance(node, ast.ClassDef):
                yield from visit(node.body, f"{prefix}{node.name}.")

    yield from visit(tree.body, "")


def _body_nodes(
    function: ast.FunctionDef | ast.AsyncFunctionDef,
) -> Iterator[tuple[ast.AST, list[ast.stmt] | None]]:
    """Nodes of a function's body (not its signature or decorators), with each statement's block."""
    stack: list[tuple[ast.AST, list[ast.stmt] | None]] = []
    for stmt in function.body:
        stack.append((stmt, function.body))
    while stack:
        node, block = stack.pop()
        yield node, block
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for child in value:
                    if isinstance(child, ast.AST):
                        stack.append((child, value if isinstance(child, ast.stmt) else None))
            elif isinstance(value, ast.AST) and name != "decorator_list":
                stack.append((value, None))


def _one_token(gap: str, pattern: str) -> re.Match[str] | None:
    if "#" in gap:
        return None
    matches = list(re.finditer(pattern, gap))
    return matches[0] if len(matches) == 1 else None


def _is_docstring(node: ast.AST, block: list[ast.stmt] | None) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def candidates_in_source(path: str, source: bytes) -> list[Mutation]:
    """Every mutation of ``source`` that parses and changes its AST, in file order, unique."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    original_dump = ast.dump(tree)
    off = _Offsets(source)
    found: list[Mutation] = []
    seen: set[str] = set()

    def add(function: str, kind: str, node: ast.AST, start: int, end: int, replacement: str) -> None:
        mutation = Mutation(path, function, kind, node.lineno, start, end, off.text(start, end), replacement)
        if mutation.original == replacement:
            return
        try:
            mutated = ast.parse(mutation.apply(source))
        except (SyntaxError, ValueError):
            return
        dump = ast.dump(mutated)
        if dump == original_dump or dump in seen:
            return
        seen.add(dump)
        found.append(mutation)

    for qualname, function in _functions(tree):
        for node, block in _body_nodes(function):
            if getattr(node, "end_lineno", None) is None or _is_docstring(node, block):
                continue
            if node.end_lineno - node.lineno >= MAX_SPAN_LINES and not isinstance(node, ast.If):
                continue
            _mutations_of(node, block, qualname, off, add)
    found.sort(key=lambda m: (m.start, m.end, m.kind, m.replacement))
    return found


def _mutations_of(node, block, qualname, off, add) -> None:
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        op = type(node.ops[0])
        gap_start = off.span(node.left)[1]
        gap_end = off.span(node.comparators[0])[0]
        gap = off.text(gap_start, gap_end)
        match = _one_token(gap, _COMPARE_TOKENS[op])
        if match:
            s, e = (
                gap_start + len(gap[: match.start()].encode()),
                gap_start + len(gap[: match.end()].encode()),
            )
            add(qualname, "flip_comparison", node, s, e, _NEGATED[op])
            if op in _BOUNDARY:
                add(qualname, "off_by_one", node, s, e, _BOUNDARY[op])
    elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        if any(
            (isinstance(x, ast.Constant) and isinstance(x.value, str | bytes)) or isinstance(x, ast.JoinedStr)
            for x in (node.left, node.right)
        ):
            return
        token, new = _ARITH[type(node.op)]
        gap_start, gap_end = off.span(node.left)[1], off.span(node.right)[0]
        gap = off.text(gap_start, gap_end)
        match = _one_token(gap, re.escape(token) + r"(?!=)")
        if match:
            s = gap_start + len(gap[: match.start()].encode())
            add(qualname, "flip_arithmetic", node, s, s + len(token), new)
    elif isinstance(node, ast.BoolOp) and len(node.values) >= 2:
        word, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        if len(node.values) == 2:
            gap_start, gap_end = off.span(node.values[0])[1], off.span(node.values[1])[0]
            gap = off.text(gap_start, gap_end)
            match = _one_token(gap, rf"\b{word}\b")
            if match:
                s = gap_start + len(gap[: match.start()].encode())
                add(qualname, "flip_boolean", node, s, s + len(word), other)
        last_end = off.span(node.values[-1])[1]
        prev_end = off.span(node.values[-2])[1]
        add(qualname, "remove_condition", node, prev_end, last_end, "")
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        start = off.span(node)[0]
        operand_start = off.span(node.operand)[0]
        gap = off.text(start, operand_start)
        match = re.match(r"not\s+", gap) or re.match(r"not(?=\()", gap)
        if match:
            add(qualname, "remove_condition", node, start, start + len(match.group(0).encode()), "")
    elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 10:
        s, e = off.span(node)
        add(qualname, "off_by_one", node, s, e, str(node.value + 1))
        if node.value >= 1:
            add(qualname, "off_by_one", node, s, e, str(node.value - 1))
    elif isinstance(node, ast.Call) and len(node.args) >= 2:
        a, b = node.args[0], node.args[1]
        if isinstance(a, ast.Starred) or isinstance(b, ast.Starred):
            return
        (a_s, a_e), (b_s, b_e) = off.span(a), off.span(b)
        middle = off.text(a_e, b_s)
        add(qualname, "swap_arguments", node, a_s, b_e, off.text(b_s, b_e) + middle + off.text(a_s, a_e))
    elif isinstance(node, ast.Return) and node.value is not None:
        if isinstance(node.value, ast.Constant) and node.value.value is None:
            return
        s, e = off.span(node.value)
        add(qualname, "drop_return", node, s, e, "None")
    elif (
        isinstance(node, ast.If)
        and not node.orelse
        and block is not None
        and len(block) >= 2
        and len(node.body) == 1
        and isinstance(node.body[0], ast.Return | ast.Raise | ast.Continue | ast.Break)
    ):
        s, e = off.span(node)
        line_start = off.starts[node.lineno - 1]
        if off.text(line_start, s).strip():
            return
        line_end = off.starts[node.end_lineno] if node.end_lineno < len(off.starts) else len(off.source)
        rest = off.text(e, line_end)
        if rest.strip() and not rest.strip().startswith("#"):
            return
        add(qualname, "remove_condition", node, line_start, line_end, "")


def candidates_in_files(files: dict[str, bytes]) -> list[Mutation]:
    """Mutations of every mutable file, ordered by (path, position): the seed shuffles this list."""
    out: list[Mutation] = []
    for path in sorted(files):
        if mutable_file(path):
            out.extend(candidates_in_source(path, files[path]))
    return out
