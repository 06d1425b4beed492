"""Problem statements for synthesised bugs, written from what the failing tests show.

The text names the failing tests and quotes their error lines (pytest's ``E`` lines), the way a
user would report a regression; it never mentions the mutation, its file or its line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MAX_TESTS_LISTED = 6
MAX_ERROR_LINES = 6
MAX_LINE_CHARS = 240
_PARAMS = re.compile(r"\[.*\]$")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # object reprs differ run to run (ASLR): drop them


def test_title(node_id: str) -> str:
    """``tests/test_x.py::TestFoo::test_bar_baz[1-2]`` → ``bar baz``."""
    name = _PARAMS.sub("", node_id.split("::")[-1])
    name = re.sub(r"^test_?", "", name)
    return name.replace("_", " ").strip() or node_id


def error_lines(message: str | None) -> list[str]:
    """The error explanation of a pytest failure: its ``E`` lines, without source or locations."""
    if not message:
        return []
    lines: list[str] = []
    for raw in message.splitlines():
        if raw.startswith("E ") or raw == "E":
            text = _ADDRESS.sub("", raw[1:]).strip()
            if text and text not in lines:
                lines.append(text[:MAX_LINE_CHARS])
    return lines[-MAX_ERROR_LINES:] if len(lines) > MAX_ERROR_LINES else lines


def _subject(failing: Sequence[str]) -> str:
    titles: list[str] = []
    for node in failing:
        title = test_title(node)
        if title not in titles:
            titles.append(title)
    shown = ", ".join(f"`{t}`" for t in titles[:3])
    return shown + (" and more" if len(titles) > 3 else "")


def tests_report(failing: Sequence[str], messages: Mapping[str, str | None]) -> list[str]:
    """Markdown lines listing the failing tests with their quoted error lines."""
    lines: list[str] = []
    quoted = 0
    for node in sorted(failing)[:MAX_TESTS_LISTED]:
        lines.append(f"- `{node}`")
        errors = error_lines(messages.get(node))
        if errors and quoted < 3:
            quoted += 1
            lines.append("  ```")
            lines.extend(f"  {e}" for e in errors)
            lines.append("  ```")
    if len(failing) > MAX_TESTS_LISTED:
        lines.append(f"- … and {len(failing) - MAX_TESTS_LISTED} more")
    return lines


def reproduce_line(failing: Sequence[str]) -> str:
    files = " ".join(sorted({n.split("::")[0] for n in failing}))
    return f"Reproduce with `python -m pytest {files}`."


def problem_statement(
    package: str,
    version: str,
    failing: Sequence[str],
    messages: Mapping[str, str | None],
    still_passing: int,
) -> str:
    """A bug report for ``package`` from its failing tests and their error messages."""
    failing = sorted(failing)
    lines = [
        f"Wrong results from {package} {version}: {_subject(failing)}",
        "",
        f"With the code at this commit, {len(failing)} of the package's own tests fail "
        f"({still_passing} related tests still pass). The failing behaviour:",
        "",
    ]
    lines += tests_report(failing, messages)
    lines += [
        "",
        "Expected: these tests pass without breaking the ones that pass now. " + reproduce_line(failing),
    ]
    return "\n".join(lines) + "\n"
