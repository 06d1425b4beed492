"""Importers: SWE-bench, SWE-smith, GitHub issue/PR packs and local git commit packs.

Each parser returns an ``ParsedBatch`` (tasks, rejected records with reasons, context records);
``run_import`` stores them: tasks upserted into the slice (idempotent), events for the changed
ones, rejects into quarantine, context beside the slice.
"""

from vtforge.tasks.importers.common import IMPORTERS, ImportSummary, ParsedBatch, run_import

__all__ = ["IMPORTERS", "ImportSummary", "ParsedBatch", "run_import"]
