-- metric simple_count: {'key': 'simple_count', 'model': 'tickets', 'measure': 'count(*)', 'filter': "priority = 'high'", 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-simple_count]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(`t`.`opened_at`, 'Europe/Paris') AS DATE), WEEK) AS DATE) AS `period`,
  CAST(COUNT(CASE WHEN `t`.`priority` = 'high' THEN 1 END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`tickets` AS t
WHERE
  NOT `t`.`opened_at` IS NULL
GROUP BY
  1;
