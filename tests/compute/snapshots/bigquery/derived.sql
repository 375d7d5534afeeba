-- metric derived: {'key': 'derived', 'type': 'derived', 'formula': 'pipeline / demos', 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-derived]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), WEEK) AS DATE) AS `period`,
  CAST(SUM(CASE WHEN `t`.`kind` = 'deal' THEN `t`.`amount` END) AS FLOAT64) AS `a0`,
  CAST(COUNT(CASE WHEN `t`.`kind` = 'demo' THEN 1 END) AS FLOAT64) AS `a1`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
