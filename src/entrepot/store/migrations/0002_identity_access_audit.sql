-- Identity, credentials, access governance and audit.

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL,
    password_hash text,
    is_platform_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
CREATE UNIQUE INDEX users_email_idx ON users (lower(email));

CREATE TABLE org_members (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user_idx ON org_members (user_id);

CREATE TABLE apps (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    client_id text NOT NULL UNIQUE,
    client_secret_digest bytea NOT NULL,
    redirect_uris text[] NOT NULL DEFAULT '{}',
    scopes text[] NOT NULL,
    plan text NOT NULL DEFAULT 'default',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    UNIQUE (org_id, name)
);

-- API keys now belong to an app (or, for the bootstrap key, to no one).
ALTER TABLE api_keys
    ADD COLUMN app_id uuid REFERENCES apps (id) ON DELETE CASCADE,
    ADD COLUMN first_used_at timestamptz,
    ADD COLUMN rotated_from uuid REFERENCES api_keys (id) ON DELETE SET NULL;
CREATE INDEX api_keys_app_idx ON api_keys (app_id);

-- JWT signing keys: the newest unretired key signs; every key is published in
-- the JWKS until its last token has expired.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    private_pem text NOT NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    publish_until timestamptz
);

ALTER TABLE datasets ADD COLUMN auto_approve boolean NOT NULL DEFAULT false;

CREATE TABLE grants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes text[] NOT NULL,
    fields text[],
    row_filter jsonb,
    expires_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL
);
CREATE INDEX grants_live_idx ON grants (app_id, dataset_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_dataset_idx ON grants (dataset_id);

CREATE TABLE access_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dataset_id bigint NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    app_id uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes text[] NOT NULL,
    reason text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    note text,
    decided_by text,
    decided_at timestamptz,
    grant_id uuid REFERENCES grants (id) ON DELETE SET NULL,
    requested_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_requests_dataset_idx ON access_requests (dataset_id, status);
CREATE INDEX access_requests_app_idx ON access_requests (app_id);

-- Append-only audit log. The trigger refuses UPDATE, DELETE and TRUNCATE for
-- every role the application connects as; see docs/access.md for running the
-- application under a role that does not own the table.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    app_id uuid,
    org_id uuid,
    action text NOT NULL,
    target text,
    outcome text NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    status integer,
    request_id text,
    ip text,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_org_idx ON audit_log (org_id, id);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
CREATE INDEX audit_log_target_idx ON audit_log (target, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Keys belong to apps now; the bootstrap admin key belongs to no one.
ALTER TABLE api_keys DROP COLUMN org_id;
