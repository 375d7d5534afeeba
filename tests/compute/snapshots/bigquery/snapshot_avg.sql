-- metric snapshot_avg: {'key': 'snapshot_avg', 'type': 'snapshot', 'model': 'subs', 'measure': 'avg(mrr)', 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-snapshot_avg]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  p.period AS `period`,
  CAST(AVG(`t`.`mrr`) AS FLOAT64) AS `a0`
FROM (
  SELECT
    CAST('2026-01-01' AS DATE) AS `period`,
    CAST('2026-02-01' AS DATE) AS `moment`
  UNION ALL
  SELECT
    CAST('2026-02-01' AS DATE) AS `period`,
    CAST('2026-03-01' AS DATE) AS `moment`
  UNION ALL
  SELECT
    CAST('2026-03-01' AS DATE) AS `period`,
    CAST('2026-03-19' AS DATE) AS `moment`
) AS p
INNER JOIN `my-project`.`analytics`.`subs` AS t
  ON `t`.`start_date` < p.moment
  AND (
    `t`.`end_date` IS NULL OR `t`.`end_date` >= p.moment
  )
GROUP BY
  1;
