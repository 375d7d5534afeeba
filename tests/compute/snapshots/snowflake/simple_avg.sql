-- metric simple_avg: {'key': 'simple_avg', 'model': 'events', 'measure': 'avg(amount)', 'filter': "kind = 'deal'", 'grain': 'quarter'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-simple_avg]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC('QUARTER', CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) AS DATE) AS "period",
  CAST(AVG(CASE WHEN "t".kind = 'deal' THEN "t".amount END) AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
