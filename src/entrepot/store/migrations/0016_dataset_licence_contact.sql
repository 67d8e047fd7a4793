-- Issue 11's portal shows what a provider says about a dataset: the licence its
-- records are published under (an SPDX identifier or a short name, and where its
-- text is) and a contact ({"name", "email", "url"}, each optional). Nullable columns
-- without a default: adding them rewrites nothing, so the lock on datasets is brief.
-- (Usage per dataset is 0017: its index build must not hold this lock.)
LOCK TABLE datasets IN ACCESS EXCLUSIVE MODE;

ALTER TABLE datasets
    ADD COLUMN license text CHECK (char_length(license) BETWEEN 1 AND 100),
    ADD COLUMN license_url text CHECK (char_length(license_url) <= 2000),
    ADD COLUMN contact jsonb CHECK (jsonb_typeof(contact) = 'object');
