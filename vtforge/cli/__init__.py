"""The ``vtforge`` command line.

Each module in this package that defines ``register(app)`` adds its commands; modules are found
at start-up, so a new command group is one new file. Every command takes ``--config PATH``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

app = typer.Typer(
    name="vtforge",
    help="Turn VT Code agent work into training data (Kimi-Dev recipe).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    from vtforge.cli._common import run_app

    sys.exit(run_app(app))
