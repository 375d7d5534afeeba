-- metric simple_avg: {'key': 'simple_avg', 'model': 'events', 'measure': 'avg(amount)', 'filter': "kind = 'deal'", 'grain': 'quarter'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-simple_avg]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(
    CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE),
    QUARTER
  ) AS DATE) AS `period`,
  CAST(AVG(CASE WHEN `t`.`kind` = 'deal' THEN `t`.`amount` END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
