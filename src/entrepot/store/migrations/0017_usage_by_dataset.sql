-- Usage per app, hour, endpoint class and status, and now per dataset too (issue 11):
-- the name in the request's path, '' for routes without one. The meter keeps only
-- names of datasets that exist when it flushes (limits/repository.py, add_usage), so
-- the column is bounded by the catalogue, not by what callers type. The existing rows
-- are the '' dataset (a constant default: no rewrite). The primary key is rebuilt
-- with the column in it: usage_hourly is locked while it builds (about a second per
-- million rows kept); replicas keep their counts in memory meanwhile and add them
-- after, and usage reports wait. Nothing else is locked.
LOCK TABLE usage_hourly IN ACCESS EXCLUSIVE MODE;

ALTER TABLE usage_hourly
    ADD COLUMN dataset text NOT NULL DEFAULT '',
    DROP CONSTRAINT usage_hourly_pkey,
    ADD PRIMARY KEY (app_id, hour, endpoint_class, status, dataset);

-- A provider's report reads one dataset's rows across every app.
CREATE INDEX usage_hourly_dataset_idx ON usage_hourly (dataset, hour) WHERE dataset <> '';
