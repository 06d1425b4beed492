-- One row per localization rollout, with the gold files it is measured against. file_kind says what
-- it localized: 'test' for a test-file localization (self-play tags it with the envelope attribute
-- target = 'test'; a TestWriter rollout's localization is one too), else 'source'. gold_files are
-- the gold patch's files for a source localization and the test patch's files for a test one.
WITH located AS (
    SELECT
        l.*,
        r.policy_version,
        r.sample_index,
        CASE
            WHEN map_extract_value(l.envelope.attributes, 'target') = 'test' OR r.role = 'testwriter'
                THEN 'test'
            ELSE 'source'
        END AS file_kind,
        coalesce(l.task_id, r.task_id) AS located_task_id
    FROM raw_localization_predicted l
    LEFT JOIN rollouts r ON r.rollout_id = l.rollout_id
    QUALIFY row_number() OVER (PARTITION BY l.rollout_id ORDER BY l.occurred_at DESC, l.event_id) = 1
)
SELECT
    l.rollout_id,
    l.located_task_id AS task_id,
    l.files,
    l.dropped,
    l.method,
    l.file_kind,
    l.policy_version,
    l.sample_index,
    CASE l.file_kind WHEN 'test' THEN t.test_files ELSE t.gold_files END AS gold_files,
    l.stage,
    l.synthetic,
    l.occurred_at
FROM located l
LEFT JOIN tasks t ON t.task_id = l.located_task_id
