-- metric simple_joined: {'key': 'simple_joined', 'model': 'events', 'measure': 'sum(amount)', 'filter': "customers.region = 'EU'", 'grain': 'month'}
-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[snowflake-simple_joined]
-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
SELECT
  CAST(DATE_TRUNC('MONTH', CAST(CONVERT_TIMEZONE('UTC', 'Europe/Paris', "t".created_at) AS DATE)) AS DATE) AS "period",
  CAST(SUM(CASE WHEN "j_customers".region = 'EU' THEN "t".amount END) AS DOUBLE) AS "a0"
FROM ANALYTICS.PUBLIC.events AS "t"
LEFT JOIN ANALYTICS.PUBLIC.customers AS "j_customers"
  ON "t".customer_id = "j_customers".customer_id
WHERE
  NOT "t".created_at IS NULL AND "j_customers".region = 'EU'
GROUP BY
  1;
