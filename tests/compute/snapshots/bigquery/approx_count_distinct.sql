-- metric approx_count_distinct: {'key': 'approx_count_distinct', 'model': 'events', 'measure': 'approx_count_distinct(customer_id)', 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-approx_count_distinct]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), MONTH) AS DATE) AS `period`,
  CAST(APPROX_COUNT_DISTINCT(`t`.`customer_id`) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
