-- Helpers every model may use (temporary macros: they live in the connection, not the file).
CREATE OR REPLACE TEMP MACRO diff_files(diff) AS
    list_distinct(regexp_extract_all(coalesce(diff, ''), '(?m)^diff --git a/\S+ b/(\S+)', 1));
CREATE OR REPLACE TEMP MACRO is_failure(status) AS status IN ('FAILED', 'ERROR');
-- The curriculum bucket of a baseline success rate; the same rule as vtforge.tasks.model.bucket_of
-- (tests/trainers/test_buckets.py checks they agree): NULL (never measured) is 'unmeasured'.
CREATE OR REPLACE TEMP MACRO bucket_of(rate) AS
    CASE WHEN rate IS NULL THEN 'unmeasured'
         WHEN rate >= getvariable('easy_min_success') THEN 'easy'
         WHEN rate > getvariable('medium_min_success') THEN 'medium'
         ELSE 'hard' END;
