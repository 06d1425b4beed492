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
-- The 95% Wilson score interval of a rate p measured on n trials (NULL when n is 0 or p unknown):
-- unlike p ± 1.96·sqrt(p(1-p)/n) it stays inside [0, 1] and is not empty at p = 0 or 1.
CREATE OR REPLACE TEMP MACRO wilson_low(p, n) AS
    CASE WHEN p IS NULL OR coalesce(n, 0) = 0 THEN NULL
         ELSE greatest(0.0, (p + 1.9208 / n - 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n)) END;
CREATE OR REPLACE TEMP MACRO wilson_high(p, n) AS
    CASE WHEN p IS NULL OR coalesce(n, 0) = 0 THEN NULL
         ELSE least(1.0, (p + 1.9208 / n + 1.96 * sqrt(p * (1 - p) / n + 0.9604 / (n * n))) / (1 + 3.8416 / n)) END;
