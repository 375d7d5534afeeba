-- metric snapshot: {'key': 'snapshot', 'type': 'snapshot', 'model': 'subs', 'measure': 'sum(mrr)', 'filter': "segment = 'PME'", 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-snapshot]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC('MONTH', CAST("t"."_at" AS DATE)) AS DATE) AS "period",
  CAST(SUM(CASE WHEN "t".segment = 'PME' THEN "t"."_sign" * (
    "t".mrr
  ) END) AS DOUBLE) AS "a0",
  CAST(SUM(
    CASE
      WHEN "t".segment = 'PME' AND "t"."_at" < CAST('2026-03-19' AS DATE)
      THEN "t"."_sign" * (
        "t".mrr
      )
    END
  ) AS DOUBLE) AS "b0"
FROM (
  SELECT
    CAST("t".start_date AS TIMESTAMP) AS "_at",
    1 AS "_sign",
    *
  FROM ANALYTICS.PUBLIC.subs AS "t"
  WHERE
    NOT "t".start_date IS NULL
    AND (
      "t".end_date IS NULL OR "t".end_date >= "t".start_date
    )
  UNION ALL
  SELECT
    CAST("t".end_date AS TIMESTAMP) AS "_at",
    -1 AS "_sign",
    *
  FROM ANALYTICS.PUBLIC.subs AS "t"
  WHERE
    (
      NOT "t".start_date IS NULL
      AND (
        "t".end_date IS NULL OR "t".end_date >= "t".start_date
      )
    )
    AND NOT "t".end_date IS NULL
) AS "t"
GROUP BY
  1;
