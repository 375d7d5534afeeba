-- metric derived: {'key': 'derived', 'type': 'derived', 'formula': 'pipeline / demos', 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-derived]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  DATEADD(
    DAY,
    CAST((
      DAYOFWEEKISO(CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) - 7 + 7
    ) % 7 AS INT) * -1,
    CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)
  ) AS "period",
  CAST(SUM(CASE WHEN "t".kind = 'deal' THEN "t".amount END) AS DOUBLE) AS "a0",
  CAST(COUNT(CASE WHEN "t".kind = 'demo' THEN 1 END) AS DOUBLE) AS "a1"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
