-- The change feed: a per-dataset, gapless, commit-ordered log of record changes.
--
-- feed_heads holds each dataset's last assigned seq. A writer bumps it in the
-- same transaction as its change, as that transaction's last statement; the
-- row lock it takes is held until commit, so seq order is commit order and a
-- rolled-back change gives its number back (no gaps). min_seq is the
-- compaction horizon: changes with seq <= min_seq are gone.
CREATE TABLE feed_heads (
    dataset_id bigint PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE,
    last_seq bigint NOT NULL DEFAULT 0,
    min_seq bigint NOT NULL DEFAULT 0
);
INSERT INTO feed_heads (dataset_id) SELECT id FROM datasets;

CREATE TABLE changes (
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    op text NOT NULL CHECK (op IN ('upsert', 'delete')),
    record_id text NOT NULL,
    version bigint NOT NULL,
    data jsonb,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, seq)
);
CREATE INDEX changes_at_idx ON changes (dataset_id, at);
