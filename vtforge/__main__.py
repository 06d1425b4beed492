"""``python -m vtforge`` is the ``vtforge`` command."""

from vtforge.cli import main

main()
