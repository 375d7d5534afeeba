-- model events: the span of its rows, its join's duplicate-key check
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-model_events]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(MIN(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris')) AS DATE) AS `first`,
  CAST(MAX(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris')) AS DATE) AS `last`
FROM `my-project`.`analytics`.`events` AS t;

SELECT
  `t`.`customer_id`,
  COUNT(*) AS `n`
FROM `my-project`.`analytics`.`customers` AS t
GROUP BY
  1
HAVING
  COUNT(*) > 1
ORDER BY
  `n` DESC
LIMIT 3;
