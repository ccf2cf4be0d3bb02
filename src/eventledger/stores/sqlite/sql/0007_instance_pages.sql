-- Process-manager instances are listed most recently changed first, a page at a time
-- (keyset: after the last row's updated_at and instance_id).
CREATE INDEX eventledger_process_instances_recent
    ON eventledger_process_instances (process, updated_at DESC, instance_id);
