"""Live VT Code sessions as vtforge events (stage agentic).

Producers: ``tailer`` (sessions' ``events.jsonl`` and the trajectory log, with persisted
cursors), ``stream`` (``vtcode exec --json`` stdout, a saved stream, stdin), and the ``hook`` /
``notify`` payloads (``mapping.hook_step`` / ``mapping.notify_step``, delivered by ``deliver``
within a deadline or spooled by ``spool``). ``formats`` reads the lines, ``mapping`` turns them
into ``rollout`` and ``agent_step`` events, ``patches`` reads edit tool calls.
"""

from vtforge.vtcode.mapping import PRODUCER, MappingContext, SessionMapper, SessionState, rollout_id_for

__all__ = ["PRODUCER", "MappingContext", "SessionMapper", "SessionState", "rollout_id_for"]
