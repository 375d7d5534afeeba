-- metric snapshot_time: {'key': 'snapshot_time', 'type': 'snapshot', 'model': 'stock', 'measure': 'sum(units)', 'grain': 'week'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[bigquery-snapshot_time]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  `t`.`_period` AS `period`,
  CAST(SUM(`t`.`units`) AS FLOAT64) AS `a0`
FROM (
  SELECT
    *,
    CAST(DATE_TRUNC(CAST(`t`.`snapshot_date` AS DATE), WEEK) AS DATE) AS `_period`,
    `t`.`snapshot_date` AS `_ts`,
    MAX(`t`.`snapshot_date`) OVER (PARTITION BY CAST(DATE_TRUNC(CAST(`t`.`snapshot_date` AS DATE), WEEK) AS DATE)) AS `_last`
  FROM `my-project`.`analytics`.`stock_daily` AS t
  WHERE
    NOT `t`.`snapshot_date` IS NULL
) AS t
WHERE
  `t`.`_ts` = `t`.`_last`
GROUP BY
  1;
