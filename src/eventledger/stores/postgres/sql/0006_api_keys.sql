-- API keys for the HTTP server. The secret is never stored: only its SHA-256
-- (secrets are 256 random bits, so a slow hash would add nothing).
CREATE TABLE __SCHEMA__.api_keys (
    id          text        COLLATE "C" PRIMARY KEY,
    owner       text        NOT NULL,
    secret_hash text        NOT NULL,
    scopes      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at  timestamptz
);
