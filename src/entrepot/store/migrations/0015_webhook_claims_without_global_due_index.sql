-- Claims read each webhook's due deliveries along webhook_deliveries_webhook_due_idx
-- (0013). The global index on next_attempt_at that the first claim query used is
-- dropped: with statistics taken while the queue was nearly empty (it swings from
-- empty to thousands of rows in seconds), the planner preferred it for every
-- webhook's read and even for the per-record ordering check, so one claim walked
-- the whole queue once per webhook (measured: 107 ms for 3,000 due deliveries and
-- 112 webhooks, against 1 ms with the per-webhook index). bench/webhooks.py's outage
-- scenario fell behind for good that way (bench/RESULTS.md, 2026-12-03).
DROP INDEX IF EXISTS webhook_deliveries_due_idx;
