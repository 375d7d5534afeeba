-- metric simple_count: {'key': 'simple_count', 'model': 'tickets', 'measure': 'count(*)', 'filter': "priority = 'high'", 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-simple_count]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  DATEADD(
    DAY,
    CAST((
      DAYOFWEEKISO(
        CAST(CAST(CONVERT_TIMEZONE('Europe/Paris', "t".opened_at) AS TIMESTAMPNTZ) AS DATE)
      ) - 7 + 7
    ) % 7 AS INT) * -1,
    CAST(CAST(CONVERT_TIMEZONE('Europe/Paris', "t".opened_at) AS TIMESTAMPNTZ) AS DATE)
  ) AS "period",
  CAST(COUNT(CASE WHEN "t".priority = 'high' THEN 1 END) AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.tickets AS "t"
WHERE
  NOT "t".opened_at IS NULL
GROUP BY
  1;
