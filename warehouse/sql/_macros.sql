-- Helpers every model may use (temporary macros: they live in the connection, not the file).
CREATE OR REPLACE TEMP MACRO diff_files(diff) AS
    list_distinct(regexp_extract_all(coalesce(diff, ''), '(?m)^diff --git a/\S+ b/(\S+)', 1));
CREATE OR REPLACE TEMP MACRO is_failure(status) AS status IN ('FAILED', 'ERROR');
CREATE OR REPLACE TEMP MACRO bucket_of(rate) AS
    CASE WHEN rate IS NULL THEN NULL
         WHEN rate >= getvariable('easy_min_success') THEN 'easy'
         WHEN rate > getvariable('medium_min_success') THEN 'medium'
         ELSE 'hard' END;
