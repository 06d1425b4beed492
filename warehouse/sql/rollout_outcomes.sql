-- The outcome of every rollout as one reward in [0, 1], and success = full reward:
--   localizer   recall of the files it is measured against (localizations.gold_files: the gold
--               patch's for source, the test patch's for test) within the first max_localized_files;
--   bugfixer, synthesis, agent   the best reward of any patch the rollout proposed (or of a reward
--               that names the rollout; an agent rollout whose outcome is resolved counts as 1);
--   testwriter  the test's reward, else 1 when it fails before and passes after the fix, 0 when
--               it was observed to pass before or to fail after.
-- NULL reward = not judged yet (no execution, no gold files). Infra failures never count.
WITH patch_reward AS (
    SELECT subject_id AS patch_id, max(reward) AS reward
    FROM rewards WHERE subject_kind = 'patch' AND outcome NOT IN ('infra_failure', 'flaky')
    GROUP BY subject_id
),
by_patch AS (
    SELECT p.rollout_id, max(pr.reward) AS reward
    FROM raw_patch_proposed p JOIN patch_reward pr USING (patch_id)
    WHERE p.rollout_id IS NOT NULL
    GROUP BY p.rollout_id
),
by_test AS (
    SELECT t.rollout_id,
           max(coalesce(o.reward, CASE WHEN o.fails_before AND o.passes_after THEN 1.0
                                       WHEN NOT o.fails_before OR NOT o.passes_after THEN 0.0
                                  END)) AS reward
    FROM raw_test_proposed t JOIN test_outcomes o USING (test_id)
    WHERE t.rollout_id IS NOT NULL
    GROUP BY t.rollout_id
),
direct AS (
    SELECT rollout_id, max(reward) AS reward
    FROM rewards WHERE rollout_id IS NOT NULL AND outcome NOT IN ('infra_failure', 'flaky')
    GROUP BY rollout_id
),
located AS (
    SELECT rollout_id,
           CASE WHEN len(gold_files) > 0 THEN
               len(list_intersect(list_distinct(files[1:getvariable('max_localized_files')]), gold_files))
               / len(gold_files) END AS recall
    FROM localizations
),
scored AS (
    SELECT
        r.rollout_id, r.task_id, r.role, r.policy_version, r.stage, r.synthetic,
        CASE r.role
            WHEN 'localizer' THEN l.recall
            WHEN 'testwriter' THEN coalesce(bt.reward, d.reward)
            ELSE greatest(bp.reward, d.reward, CASE WHEN r.outcome = 'resolved' THEN 1.0 END)
        END AS reward
    FROM rollouts r
    LEFT JOIN by_patch bp USING (rollout_id)
    LEFT JOIN by_test bt USING (rollout_id)
    LEFT JOIN direct d USING (rollout_id)
    LEFT JOIN located l USING (rollout_id)
)
SELECT *, reward >= 1.0 AS success FROM scored
