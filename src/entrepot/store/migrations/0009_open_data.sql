-- Open data: a dataset its provider marks `open` is readable by anyone, with no
-- credential at all (the CKAN default), where `public` needs an authenticated
-- caller. The datasets table is small: the check is swapped under a brief lock.
ALTER TABLE datasets
    DROP CONSTRAINT datasets_visibility_check,
    ADD CONSTRAINT datasets_visibility_check
        CHECK (visibility IN ('open', 'public', 'restricted'));

-- Anonymous readers are rate limited per client address by this plan; operators
-- tune it like any other (PATCH /v1/plans/anonymous). Kept if it already exists.
INSERT INTO plans (name, rate_per_second, burst) VALUES ('anonymous', 10, 40)
ON CONFLICT (name) DO NOTHING;
