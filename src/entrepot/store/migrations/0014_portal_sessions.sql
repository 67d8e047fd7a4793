-- The developer portal's sign-in sessions (/portal): a browser holds an opaque random
-- token in an HttpOnly cookie; only its SHA-256 digest is stored, so a copy of this
-- table signs no one in. A session ends at expires_at, at sign-out, at a password
-- change, and with its user. org_id is the organisation the person works in (the
-- portal's org switcher); it falls back to their first membership when it is gone.
-- Both tables are new: the only lock taken on an existing table is the brief one a
-- foreign key needs on users and orgs.
LOCK TABLE users, orgs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE portal_sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_digest bytea NOT NULL UNIQUE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id uuid REFERENCES orgs (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX portal_sessions_user_idx ON portal_sessions (user_id);
CREATE INDEX portal_sessions_org_idx ON portal_sessions (org_id);

-- The key the portal's CSRF tokens are signed with, one for the platform so that every
-- replica checks the tokens another one issued. Made by the first replica that needs it.
CREATE TABLE portal_keys (
    name text PRIMARY KEY,
    secret bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
