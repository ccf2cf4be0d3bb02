-- API keys for the HTTP server. The secret is never stored: only its SHA-256
-- (secrets are 256 random bits, so a slow hash would add nothing).
CREATE TABLE eventledger_api_keys (
    id          TEXT    PRIMARY KEY,
    owner       TEXT    NOT NULL,
    secret_hash TEXT    NOT NULL,
    scopes      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) WITHOUT ROWID;
