-- Issue 11's portal shows what a provider says about a dataset and who uses it.
--
-- Datasets: the licence their records are published under (an SPDX identifier or a
-- short name, and where its text is) and a contact ({"name", "email", "url"}, each
-- optional). Nullable columns without a default: adding them rewrites nothing.
--
-- Usage: counts per app, hour, endpoint class and status, and now per dataset too
-- (the name in the request's path, '' for routes without one; the meter keeps only
-- names of datasets that exist when it flushes, so the column is bounded by the
-- catalogue, not by what callers type). The existing rows are the '' dataset. The
-- primary key is rebuilt with the column in it: the table is locked while it builds
-- (about a second per million rows); replicas keep their counts in memory meanwhile.
LOCK TABLE datasets, usage_hourly IN ACCESS EXCLUSIVE MODE;

ALTER TABLE datasets
    ADD COLUMN license text CHECK (char_length(license) BETWEEN 1 AND 100),
    ADD COLUMN license_url text CHECK (char_length(license_url) <= 2000),
    ADD COLUMN contact jsonb CHECK (jsonb_typeof(contact) = 'object');

ALTER TABLE usage_hourly
    ADD COLUMN dataset text NOT NULL DEFAULT '',
    DROP CONSTRAINT usage_hourly_pkey,
    ADD PRIMARY KEY (app_id, hour, endpoint_class, status, dataset);

-- A provider's report reads one dataset's rows across every app.
CREATE INDEX usage_hourly_dataset_idx ON usage_hourly (dataset, hour) WHERE dataset <> '';
