-- metric count_if: {'key': 'count_if', 'model': 'events', 'measure': 'count_if(amount > 1000)', 'filter': "kind = 'deal'", 'grain': 'day'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-count_if]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE) AS `period`,
  CAST(SUM(
    CASE WHEN (
      `t`.`amount` > 1000
    ) AND (
      `t`.`kind` = 'deal'
    ) THEN 1 ELSE 0 END
  ) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
