"""The one way tests run the ``vtforge`` command line: in this process, through its real entry point.

``invoke("tasks", "list")`` runs ``vtforge.cli:main`` (the console script ``vtforge`` and
``python -m vtforge`` both call it) with Typer's ``CliRunner`` isolation: stdin, stdout and stderr
are captured separately and ``env`` is set only while the command runs. Going through ``main``
(not ``CliRunner().invoke(app)``) keeps what a user sees: a ``CliError`` is one ``error:`` line on
stderr with its exit code, a usage error exits 2, and an unexpected exception is a traceback on
stderr with exit code 1, as in a real process.

What a command changes in the process is undone afterwards: ``sys.argv`` and the SIGTERM/SIGINT
handlers (``vtforge vtcode tail`` installs one). The working directory and the config environment
are the test's: use the ``workspace`` fixture (tests/conftest.py), which makes a fresh workspace
the cwd and clears ``VTFORGE_*``/``VTCODE_CONFIG_PATH``. Rich reads ``COLUMNS`` when it prints, so
every run gets a wide console (200 columns, as a subprocess with ``COLUMNS=200`` would) unless
``env`` says otherwise.

Keep a real subprocess only where the process is the point (a signal, a long-running server,
the light ``python -m vtforge.vtcode`` entry, the exit status of a real interpreter), and say why
next to it.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Mapping

from typer.testing import CliRunner, Result

__all__ = ["CliResult", "invoke"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CliResult(Result):
    """Typer's ``Result``; its repr names the exit code and the end of stderr (what a failed
    assertion shows), not "okay" for every exit without an exception."""

    def __repr__(self) -> str:
        tail = self.stderr.strip().splitlines()[-1:] or [""]
        return f"<CliResult exit_code={self.exit_code} stderr={tail[0][:200]!r}>"


def invoke(
    *args: str,
    stdin: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
) -> CliResult:
    """Run ``vtforge *args`` in-process; ``result.exit_code``, ``.stdout`` and ``.stderr`` as a process
    would give them. ``env`` values of ``None`` unset a variable for the run."""
    from vtforge.cli import main

    runner = CliRunner()
    saved_argv = sys.argv
    in_main_thread = threading.current_thread() is threading.main_thread()
    saved_handlers = {s: signal.getsignal(s) for s in _SIGNALS} if in_main_thread else {}
    saved_handlers = {s: h for s, h in saved_handlers.items() if h is not None}  # None: not Python's
    exception: BaseException | None = None
    exc_info = None
    with runner.isolation(input=stdin, env={"COLUMNS": "200", **(env or {})}) as (out, err, mixed):
        sys.argv = ["vtforge", *args]
        try:
            main()
            exit_code = 0  # main always exits; kept for a main that returns
        except SystemExit as exc:
            code = exc.code
            if code is None:
                exit_code = 0
            elif isinstance(code, int):
                exit_code = code
            else:  # sys.exit("message"): printed to stderr, status 1
                sys.stderr.write(f"{code}\n")
                exit_code = 1
        except Exception as exc:  # what the interpreter does with an uncaught exception
            exception, exc_info = exc, sys.exc_info()
            sys.stderr.write("".join(traceback.format_exception(exc)))
            exit_code = 1
        finally:
            sys.argv = saved_argv
            for number, handler in saved_handlers.items():
                signal.signal(number, handler)
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr, output = out.getvalue(), err.getvalue(), mixed.getvalue()
    return CliResult(
        runner=runner,
        stdout_bytes=stdout,
        stderr_bytes=stderr,
        output_bytes=output,
        return_value=None,
        exit_code=exit_code,
        exception=exception,
        exc_info=exc_info,  # type: ignore[arg-type]
    )
