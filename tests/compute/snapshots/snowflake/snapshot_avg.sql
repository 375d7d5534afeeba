-- metric snapshot_avg: {'key': 'snapshot_avg', 'type': 'snapshot', 'model': 'subs', 'measure': 'avg(mrr)', 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-snapshot_avg]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  "p"."period" AS "period",
  CAST(AVG("t".mrr) AS DOUBLE) AS "a0"
FROM (VALUES
  (CAST('2026-01-01' AS DATE), CAST('2026-02-01' AS DATE)),
  (CAST('2026-02-01' AS DATE), CAST('2026-03-01' AS DATE)),
  (CAST('2026-03-01' AS DATE), CAST('2026-03-19' AS DATE))) AS "p"("period", "moment")
INNER JOIN ANALYTICS.PUBLIC.subs AS "t"
  ON "t".start_date < "p"."moment"
  AND (
    "t".end_date IS NULL OR "t".end_date >= "p"."moment"
  )
GROUP BY
  1;
