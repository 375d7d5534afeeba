-- metric simple_count_distinct: {'key': 'simple_count_distinct', 'model': 'events', 'measure': 'count(distinct customer_id)', 'filter': "kind = 'won'", 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-simple_count_distinct]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), MONTH) AS DATE) AS `period`,
  CAST(COUNT(DISTINCT CASE WHEN `t`.`kind` = 'won' THEN `t`.`customer_id` END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
