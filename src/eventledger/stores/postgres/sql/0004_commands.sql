-- Commands: what was asked, by whom, and what it wrote. A command's row commits in
-- the transaction of its events, so it is also the idempotency record: a repeat of
-- an idempotency key finds it and gets the first result back.
CREATE TABLE __SCHEMA__.commands (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    idempotency_key text        COLLATE "C" UNIQUE,
    payload_hash    text        NOT NULL,
    payload         jsonb       NOT NULL,
    correlation_id  text        COLLATE "C" NOT NULL,
    causation_id    text        COLLATE "C" NOT NULL,
    actor           text,
    result          jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX commands_correlation ON __SCHEMA__.commands (correlation_id);

-- Everything one request set off: events by correlation id (read_correlated).
CREATE INDEX events_correlation ON __SCHEMA__.events ((metadata->>'correlation_id'))
    WHERE (metadata->>'correlation_id') IS NOT NULL;
