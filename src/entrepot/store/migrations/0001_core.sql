-- Core platform: organisations, credentials, catalog, records, idempotency.

CREATE TABLE platform_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    bootstrapped_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE,
    title text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    prefix text NOT NULL,
    digest bytea NOT NULL UNIQUE,
    org_id uuid REFERENCES orgs (id) ON DELETE CASCADE,
    is_admin boolean NOT NULL DEFAULT false,
    scopes text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz
);

CREATE TABLE datasets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE RESTRICT,
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    schema jsonb NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    primary_key text,
    visibility text NOT NULL CHECK (visibility IN ('public', 'restricted')),
    indexes text[] NOT NULL DEFAULT '{}',
    tags text[] NOT NULL DEFAULT '{}',
    require_if_match boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    search tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', name || ' ' || title || ' ' || description)
    ) STORED
);
CREATE INDEX datasets_org_idx ON datasets (org_id);
CREATE INDEX datasets_tags_idx ON datasets USING gin (tags);
CREATE INDEX datasets_search_idx ON datasets USING gin (search);

-- One partition per dataset (records_<dataset id>), created with the dataset.
-- Hot queries address the partition directly, so each dataset's field indexes
-- are ordinary indexes on its own table.
CREATE TABLE records (
    dataset_id bigint NOT NULL,
    id text NOT NULL,
    version bigint NOT NULL,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dataset_id, id)
) PARTITION BY LIST (dataset_id);

CREATE TABLE idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    fingerprint bytea NOT NULL,
    status integer NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
