-- One row per sandboxed run. patch_id NULL = the unpatched repository; test_id NULL = the task's
-- own tests (or every test the run collected). Orphans are kept here and caught by a check.
SELECT
    e.execution_id,
    coalesce(e.task_id, p.task_id, t.task_id) AS task_id,
    e.patch_id,
    e.test_id,
    coalesce(p.rollout_id, t.rollout_id) AS rollout_id,
    coalesce(p.policy_version, t.policy_version) AS policy_version,
    e.backend,
    e.image,
    e.status,
    e.exit_code,
    e.tests,
    len(e.tests) AS n_tests,
    len(list_filter(e.tests, lambda x: x.status = 'PASSED')) AS n_passed,
    len(list_filter(e.tests, lambda x: is_failure(x.status))) AS n_failed,
    len(list_filter(e.tests, lambda x: x.flaky)) AS n_flaky,
    e.duration_s,
    e.setup_s,
    e.cpu_s,
    e.max_rss_mb,
    e.flaky_reruns,
    e.infra_failure OR e.status = 'infra_failure' AS infra_failure,
    e.error,
    e.stage,
    e.synthetic,
    map_extract_value(e.envelope.attributes, 'kind') AS run_kind,  -- self-play: base | gold | candidate
    e.occurred_at
FROM raw_execution_result e
LEFT JOIN patches p ON p.patch_id = e.patch_id
LEFT JOIN tests t ON t.test_id = e.test_id
-- the winning snapshot per execution_id, ranked on narrow columns (sorting the wide rows costs more)
WHERE e.event_id IN (
    SELECT event_id FROM raw_execution_result
    QUALIFY row_number() OVER (PARTITION BY execution_id ORDER BY occurred_at DESC, event_id) = 1)
