-- The change log before migration 7, empty since then. Dropping it drops its
-- foreign key to datasets, which takes ACCESS EXCLUSIVE on datasets: an instant
-- here, in a transaction of its own (under lock_timeout, tried again if a long
-- transaction holds datasets), rather than through migration 7's copy.
DROP TABLE IF EXISTS changes_unpartitioned;
