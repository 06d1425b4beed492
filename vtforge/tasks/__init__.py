"""The task bank: SWE-bench-format tasks with their provenance, importers, synthesis, manifests.

``Task`` (``model``) is the unit; ``bank`` stores slices as SWE-bench JSONL under
``<data_dir>/tasks/``; importers and ``synth`` produce tasks; ``decontam`` keeps eval material out
of training; ``manifest`` writes the rebuildable record of a slice; ``demo`` builds the demo bank.
"""

from vtforge.tasks.model import IMPORTER_VERSION, Task

__all__ = ["IMPORTER_VERSION", "Task"]
