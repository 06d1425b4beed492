"""Stage 3 self-play: BugFixer and TestWriter rollouts, the execution matrix, selection, rewards.

One task goes through ``loop.run_task``: localize files, sample patches and tests (``sampling``),
execute every unique patch against every unique test in one sandbox session per patch
(``matrix``), score and select (``selection``), optionally synthesise a final patch, assign
outcome-only rewards (``rewards``), catalogue false positives (``catalog``) and archive every
rollout, execution and decision as events (``archive``).
"""
