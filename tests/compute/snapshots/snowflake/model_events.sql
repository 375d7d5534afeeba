-- model events: the span of its rows, its join's duplicate-key check
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-model_events]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(MIN(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at)) AS DATE) AS "first",
  CAST(MAX(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at)) AS DATE) AS "last"
FROM ANALYTICS.PUBLIC.events AS "t";

SELECT
  "t".customer_id,
  COUNT(*) AS "n"
FROM ANALYTICS.PUBLIC.customers AS "t"
GROUP BY
  1
HAVING
  COUNT(*) > 1
ORDER BY
  "n" DESC NULLS LAST
LIMIT 3;
