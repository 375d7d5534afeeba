-- metric cumulative_to_date: {'key': 'cumulative_to_date', 'type': 'cumulative', 'model': 'events', 'measure': 'sum(amount)', 'filter': "kind = 'won'", 'to_date': 'year', 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-cumulative_to_date]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), MONTH) AS DATE) AS `period`,
  CAST(SUM(CASE WHEN `t`.`kind` = 'won' THEN `t`.`amount` END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
