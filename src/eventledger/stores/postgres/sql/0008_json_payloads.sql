-- Events keep their payloads exactly as they were written. jsonb takes JSON apart
-- and writes it out again in its own way: keys in another order, and numbers in
-- another form (6.451183679388246e+16 came back as the integer 64511836793882460,
-- so a float read back as an int, unlike on every other backend). json keeps the
-- text; its operators (->, ->>, #>>) and the correlation index work the same.
-- Snapshots too. Read-model document tables made from now on use json as well.
ALTER TABLE __SCHEMA__.events
    ALTER COLUMN data TYPE json USING data::json,
    ALTER COLUMN metadata TYPE json USING metadata::json;
ALTER TABLE __SCHEMA__.snapshots
    ALTER COLUMN state TYPE json USING state::json;
