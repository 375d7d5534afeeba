-- metric measure_division: {'key': 'measure_division', 'model': 'events', 'measure': 'sum(amount) / count(*)', 'grain': 'year'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-measure_division]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), YEAR) AS DATE) AS `period`,
  CAST(IEEE_DIVIDE(SUM(`t`.`amount`), COUNT(*)) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
