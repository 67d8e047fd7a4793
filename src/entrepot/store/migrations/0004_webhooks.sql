-- Webhooks: subscriptions per app, a per-(webhook, dataset) enqueue cursor
-- over the change feed, and the delivery queue that doubles as delivery log.
--
-- The signing secret is stored as issued (whsec_ + base64): HMAC signing needs
-- the secret itself, so unlike API keys it cannot be kept as a digest. Only
-- the API shows it, once, at creation and at rotation.
CREATE TABLE webhooks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url text NOT NULL,
    events text[] NOT NULL,
    secret text NOT NULL,
    previous_secret text,
    previous_secret_until timestamptz,
    disabled_at timestamptz,
    disabled_reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_app_idx ON webhooks (app_id, created_at, id);

-- The datasets a webhook follows, each with the last feed seq already turned
-- into deliveries. The dispatcher locks a row (FOR UPDATE SKIP LOCKED) while
-- it reads the feed after cursor_seq, inserts deliveries and advances the
-- cursor in one transaction: every change is enqueued once, whatever the
-- number of replicas.
CREATE TABLE webhook_datasets (
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    cursor_seq bigint NOT NULL DEFAULT 0,
    position int NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, dataset_id)
);
CREATE INDEX webhook_datasets_dataset_idx ON webhook_datasets (dataset_id);

-- One row per event to deliver. message_id is the webhook-id header, the same
-- on every attempt. status 'delivering' is an attempt in flight, leased until
-- locked_until (a crashed replica's attempt is picked up again after it).
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    n bigint GENERATED ALWAYS AS IDENTITY,
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    record_id text NOT NULL,
    event text NOT NULL,
    message_id text NOT NULL,
    payload text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivering', 'delivered', 'failed', 'cancelled')),
    attempts int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    lease uuid,
    last_attempt_at timestamptz,
    last_status_code int,
    last_error text,
    last_response text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
-- Claiming: due pending work, oldest first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
-- In order per record: an earlier unfinished delivery of the same record blocks
-- the later ones; and an event is queued at most once while unfinished.
CREATE UNIQUE INDEX webhook_deliveries_open_idx
    ON webhook_deliveries (webhook_id, dataset_id, record_id, seq)
    WHERE status IN ('pending', 'delivering');
-- The delivery log, newest first.
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (webhook_id, n);
-- Purging finished deliveries after the log's retention (failed ones stay: dead letters).
CREATE INDEX webhook_deliveries_finished_idx ON webhook_deliveries (created_at)
    WHERE status IN ('delivered', 'cancelled');
