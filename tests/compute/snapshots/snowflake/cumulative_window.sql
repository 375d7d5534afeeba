-- metric cumulative_window: {'key': 'cumulative_window', 'type': 'cumulative', 'model': 'events', 'measure': 'count(*)', 'filter': "kind = 'lead'", 'window': 4, 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-cumulative_window]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  DATEADD(
    DAY,
    CAST((
      DAYOFWEEKISO(CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) - 7 + 7
    ) % 7 AS INT) * -1,
    CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)
  ) AS "period",
  CAST(COUNT(CASE WHEN "t".kind = 'lead' THEN 1 END) AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
