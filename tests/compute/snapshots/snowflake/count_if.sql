-- metric count_if: {'key': 'count_if', 'model': 'events', 'measure': 'count_if(amount > 1000)', 'filter': "kind = 'deal'", 'grain': 'day'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-count_if]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE) AS "period",
  CAST(SUM(CASE WHEN (
    "t".amount > 1000
  ) AND (
    "t".kind = 'deal'
  ) THEN 1 ELSE 0 END) AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
