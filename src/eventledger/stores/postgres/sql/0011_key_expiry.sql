-- API keys may expire by themselves (keys create --expires-in, the old key of a
-- rotation): a key is refused from expires_at on. NULL: it never expires.
ALTER TABLE __SCHEMA__.api_keys ADD COLUMN expires_at timestamptz;
