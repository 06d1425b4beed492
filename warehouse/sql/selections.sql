-- One row per selection decision, with its score table.
SELECT
    s.selection_id,
    s.task_id,
    s.method,
    s.selected_patch_id,
    s.weights,
    s.scores,
    len(s.scores) AS candidates,
    s.synthesized,
    s.envelope.run_id AS run_id,
    s.stage,
    s.synthetic,
    s.occurred_at
FROM raw_selection_decided s
QUALIFY row_number() OVER (PARTITION BY s.selection_id ORDER BY s.occurred_at DESC, s.event_id) = 1
