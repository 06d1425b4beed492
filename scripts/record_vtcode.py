"""Record the real VT Code binary against the scripted model server (tests/vtcode/recordings/).

    .venv/bin/python scripts/record_vtcode.py [SCENARIO ...] [--binary PATH] [--out DIR]

Each scenario runs vtcode (``make vtcode`` builds it) offline in a temporary HOME and workspace
and keeps what it wrote under ``<out>/<scenario>/`` with a ``recording.json``. The replay tests
in tests/vtcode/test_recordings.py read them without the binary.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vtcode.harness import (  # noqa: E402
    PYTEST,
    Run,
    collect,
    find_binary,
    fix_script,
    run_exec,
    run_tui,
)
from tests.vtcode.scripted_server import Script  # noqa: E402

SCENARIOS: dict[str, tuple[str, Callable[[Path], Run]]] = {
    "exec_fix": (
        "exec --json: the model runs pytest, fixes calc.py with apply_patch, reruns pytest, answers",
        lambda binary: run_exec(binary, Script(fix_script())),
    ),
    "exec_loop": (
        "exec --json: the model repeats the same exec_command call until vtcode stops it",
        lambda binary: run_exec(
            binary,
            Script([{"tool_calls": [{"name": "exec_command", "arguments": PYTEST}]}], repeat_last=True),
        ),
    ),
    "exec_error": (
        "exec --json: one tool call, then the model server answers HTTP 500 to every request",
        lambda binary: run_exec(
            binary,
            Script(
                [{"tool_calls": [{"name": "exec_command", "arguments": PYTEST}]}, {"error": 500}],
                repeat_last=True,
            ),
        ),
    ),
    "exec_truncated": (
        "exec --json: the fix run, killed (SIGKILL) after its 12th stdout line: no thread.completed",
        lambda binary: run_exec(binary, Script(fix_script(), delay_s=0.5), kill_after_lines=12),
    ),
    "exec_serve_smollm2": (
        "exec --json against `vtforge serve` with the real SmolLM2-135M (llama.cpp, max_tokens 48):"
        " it never calls a tool; vtcode's loop detection blocks the turn",
        lambda binary: _against_vtforge_serve(binary),
    ),
    "tui_hooks": (
        "the interactive TUI in a pseudo-terminal with [hooks.lifecycle] and notify capturing their input",
        lambda binary: run_tui(binary, Script(fix_script())),
    ),
}


def _against_vtforge_serve(binary: Path) -> Run:
    """SmolLM2 behind vtforge's own OpenAI-compatible server, in this process."""
    from vtforge import constants as C
    from vtforge.config import load_config
    from vtforge.models import gguf_path
    from vtforge.serve import LlamaCppBackend, ModelServer

    gguf = gguf_path(load_config(REPO / "vtcode.toml"), C.DEFAULT_MODEL)
    server = ModelServer(LlamaCppBackend(gguf, model_id=C.DEFAULT_MODEL)).start()
    try:
        return run_exec(
            binary, None, base_url=server.base_url, model=C.DEFAULT_MODEL, max_tokens=48, timeout_s=600
        )
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"default: all of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--binary", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "vtcode" / "recordings")
    args = parser.parse_args()
    binary = args.binary or find_binary()
    if binary is None:
        print("no vtcode binary: set VTFORGE_VTCODE_BIN or run `make vtcode` (over an hour)", file=sys.stderr)
        return 2
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    for name in args.scenarios or list(SCENARIOS):
        description, runner = SCENARIOS[name]
        run = runner(binary)
        meta = collect(run, args.out / name, scenario=name, description=description)
        shutil.rmtree(run.root, ignore_errors=True)
        print(
            f"{name}: vtcode exited {run.returncode} in {run.seconds:.1f}s; {len(meta['files'])} files",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
