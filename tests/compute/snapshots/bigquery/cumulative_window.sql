-- metric cumulative_window: {'key': 'cumulative_window', 'type': 'cumulative', 'model': 'events', 'measure': 'count(*)', 'filter': "kind = 'lead'", 'window': 4, 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-cumulative_window]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC(CAST(DATETIME(TIMESTAMP(`t`.`created_at`, 'UTC'), 'Europe/Paris') AS DATE), WEEK) AS DATE) AS `period`,
  CAST(COUNT(CASE WHEN `t`.`kind` = 'lead' THEN 1 END) AS FLOAT64) AS `a0`
FROM `my-project`.`analytics`.`events` AS t
WHERE
  NOT `t`.`created_at` IS NULL
GROUP BY
  1;
