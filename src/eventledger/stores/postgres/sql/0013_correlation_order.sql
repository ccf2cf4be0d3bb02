-- Events by correlation id in log order (read_correlated, the causal chain): with the
-- position in the index, the generic plan reads only the chain's entries instead of
-- walking the whole log by position (820 ms on a million events, then under 1 ms).
DROP INDEX __SCHEMA__.events_correlation;
CREATE INDEX events_correlation ON __SCHEMA__.events ((metadata->>'correlation_id'), position)
    WHERE (metadata->>'correlation_id') IS NOT NULL;
