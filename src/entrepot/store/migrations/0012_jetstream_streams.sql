-- The change feed into NATS JetStream (src/entrepot/streams/, docs/jetstream.md).
--
-- jetstream_streams: which dataset's feed goes to which JetStream stream and subject,
-- carrying either full records (grant_id NULL: the provider's own systems) or what one
-- grant may see. A grant's stream ends (ended_at) when the grant is revoked or expires;
-- it never resumes by itself. Removing the dataset or the grant removes its streams.
--
-- publisher_leases: exactly one replica publishes at a time. The holder renews its row
-- before expires_at; another replica takes an expired row over, bumping term (the
-- fencing token: a holder whose term is no longer the row's has lost the lease).

CREATE TABLE jetstream_streams (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    grant_id uuid REFERENCES grants (id) ON DELETE CASCADE,
    stream text NOT NULL UNIQUE,
    subject text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    ended_at timestamptz,
    ended_reason text
);
CREATE INDEX jetstream_streams_dataset_idx ON jetstream_streams (dataset_id);
CREATE INDEX jetstream_streams_grant_idx ON jetstream_streams (grant_id);

CREATE TABLE publisher_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    term bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);
