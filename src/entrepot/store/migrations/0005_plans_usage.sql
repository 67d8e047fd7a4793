-- Plans (rate limit, burst, optional daily and monthly quotas) that apps are
-- assigned to, and hourly usage counters per app, endpoint class and status.
--
-- Usage rows are additive: every replica flushes its own counts with
-- INSERT ... ON CONFLICT DO UPDATE SET count = count + excluded.count.
CREATE TABLE plans (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    rate_per_second double precision NOT NULL CHECK (rate_per_second > 0),
    burst integer NOT NULL CHECK (burst >= 1),
    daily_quota bigint CHECK (daily_quota >= 0),
    monthly_quota bigint CHECK (monthly_quota >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO plans (name, rate_per_second, burst) VALUES ('default', 100, 200);

ALTER TABLE apps
    ADD CONSTRAINT apps_plan_fkey FOREIGN KEY (plan) REFERENCES plans (name);
CREATE INDEX apps_plan_idx ON apps (plan);

CREATE TABLE usage_hourly (
    app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    endpoint_class text NOT NULL,
    status smallint NOT NULL,
    count bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (app_id, hour, endpoint_class, status)
);
