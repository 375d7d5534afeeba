-- metric ratio: {'key': 'ratio', 'type': 'ratio', 'numerator': {'model': 'events', 'measure': 'count(*)', 'filter': "kind = 'won'"}, 'denominator': {'model': 'events', 'measure': 'count(*)', 'filter': "kind in ('won', 'lost')"}, 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-ratio]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  DATEADD(
    DAY,
    CAST((
      DAYOFWEEKISO(CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) - 7 + 7
    ) % 7 AS INT) * -1,
    CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)
  ) AS "period",
  CAST(COUNT(CASE WHEN "t".kind IN ('won', 'lost') THEN 1 END) AS DOUBLE) AS "a0",
  CAST(COUNT(CASE WHEN "t".kind = 'won' THEN 1 END) AS DOUBLE) AS "a1"
FROM ANALYTICS.PUBLIC.events AS "t"
WHERE
  NOT "t".created_at IS NULL
GROUP BY
  1;
