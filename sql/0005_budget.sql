-- The training budget: spend is the month's job_costs (UTC calendar month); each alert
-- threshold fires once a month (the row's insert is the once).
CREATE INDEX IF NOT EXISTS idx_job_costs_created ON job_costs(created_at);

CREATE TABLE IF NOT EXISTS budget_alerts (
  month      DATE NOT NULL,
  threshold  DECIMAL(10,2) NOT NULL,
  spent      DECIMAL(10,4) NOT NULL,
  fired_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (month, threshold)
);
ALTER TABLE budget_alerts ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON budget_alerts FROM PUBLIC;

CREATE OR REPLACE FUNCTION loraflow_month_spend() RETURNS DECIMAL
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(sum(cost), 0) FROM job_costs
   WHERE created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
$$;
REVOKE ALL ON FUNCTION loraflow_month_spend() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION loraflow_month_spend() TO authenticated;
