-- Placeholder on branch `meta` only: number 15 belongs to another branch's migration
-- (hooks2's webhook claims, renumbered when merged). The chain must have no gaps, so
-- this empty step stands in for it here; DELETE THIS FILE when merging that branch.
SELECT 1;
