-- Personal data (eventledger.personal): each subject's data key, wrapped by the
-- key-encryption key; forgetting a subject clears `wrapped` and keeps the row, so that
-- no new key is made for them. subject_streams finds a subject's values (export) and
-- the snapshots to discard when they are forgotten.
CREATE TABLE eventledger_subject_keys (
    subject      TEXT    PRIMARY KEY,
    wrapped      BLOB,
    created_at   INTEGER NOT NULL,
    forgotten_at INTEGER
) WITHOUT ROWID;

CREATE TABLE eventledger_subject_streams (
    subject   TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    PRIMARY KEY (subject, stream_id)
) WITHOUT ROWID;
