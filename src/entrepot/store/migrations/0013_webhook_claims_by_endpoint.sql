-- Claims read each webhook's due deliveries separately, up to that endpoint's free
-- slots (webhooks/queue_repository.py, CLAIM): a slow endpoint's backlog never fills
-- a claim, and a claim reads what it takes, not the whole queue. Built in the
-- migration's transaction: writes to the queue wait while it builds, which takes
-- about a second per million open or finished deliveries kept (30 days of them).
CREATE INDEX IF NOT EXISTS webhook_deliveries_webhook_due_idx
    ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status IN ('pending', 'delivering');
