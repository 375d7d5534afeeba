-- metric measure_division: {'key': 'measure_division', 'model': 'events', 'measure': 'sum(amount) / count(*)', 'grain': 'year'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-measure_division]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC('YEAR', CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) AS DATE) AS "period",
  CAST(CASE
    WHEN COUNT(*) = 0
    THEN CASE
      WHEN SUM("t".amount) > 0
      THEN CAST('inf' AS DOUBLE)
      WHEN SUM("t".amount) < 0
      THEN CAST('-inf' AS DOUBLE)
      WHEN SUM("t".amount) = 0
      THEN CAST('NaN' AS DOUBLE)
    END
    ELSE CAST(SUM("t".amount) AS DOUBLE) / CAST(COUNT(*) AS DOUBLE)
  END AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
