-- The read side: where subscriptions keep their place, who runs them, what they parked.

-- Position of the last event a subscription (or a read model generation) handled.
CREATE TABLE __SCHEMA__.checkpoints (
    name       text        COLLATE "C" PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One runner at a time per subscription: a lease renewed while it runs.
CREATE TABLE __SCHEMA__.leases (
    name       text        COLLATE "C" PRIMARY KEY,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Events a handler kept failing on, with the error, until retried or skipped.
CREATE TABLE __SCHEMA__.dead_letters (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription text        COLLATE "C" NOT NULL,
    position     bigint      NOT NULL,
    event_id     uuid        NOT NULL,
    stream_id    text        NOT NULL,
    event_type   text        NOT NULL,
    attempts     integer     NOT NULL,
    error        text        NOT NULL,
    traceback    text        NOT NULL,
    status       text        NOT NULL DEFAULT 'parked'
                 CHECK (status IN ('parked', 'retried', 'skipped')),
    parked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    resolved_at  timestamptz
);
CREATE INDEX dead_letters_open ON __SCHEMA__.dead_letters (subscription, status);

-- Read models: which generation of each is the one queries see.
CREATE TABLE __SCHEMA__.read_models (
    name       text        COLLATE "C" PRIMARY KEY,
    generation integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
