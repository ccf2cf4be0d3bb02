-- API keys may expire by themselves (keys create --expires-in, the old key of a
-- rotation): a key is refused from expires_at on (microseconds since the epoch, as
-- created_at). NULL: it never expires.
ALTER TABLE eventledger_api_keys ADD COLUMN expires_at INTEGER;
