-- metric simple_joined: {'key': 'simple_joined', 'model': 'events', 'measure': 'sum(amount)', 'filter': "customers.region = 'EU'", 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-simple_joined]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), MONTH) AS DATE) AS `period`,
  CAST(SUM(CASE WHEN `j_customers`.`region` = 'EU' THEN `t`.`amount` END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
LEFT JOIN `my-project`.`analytics`.`customers` AS j_customers
  ON `t`.`customer_id` = `j_customers`.`customer_id`
WHERE
  NOT `t`.`created_at` IS NULL AND `j_customers`.`region` = 'EU'
GROUP BY
  1;
