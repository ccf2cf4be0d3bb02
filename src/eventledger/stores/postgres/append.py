"""The append statement: read the stream's version, check it, insert, in one round trip.

Concurrent writers of one stream collide on ``UNIQUE (stream_id, version)``; the
loser gets a unique violation and decides again. One event (the common case)
binds plain values; a batch travels as one JSON array.

Readers wait only for transactions that took the writers' marker (the events
table's ROW EXCLUSIVE lock, which the INSERT takes as the statement starts) while
they had no transaction id (see docs/ordering.md). An append on its own (no
transaction around it) has no id when it starts, so it needs nothing more. Inside
a store transaction the statement's ``marker`` row sets the transaction's flag (so
that its later appends may go on) or refuses an append by a transaction that got
its id first; the inserted rows come from a join with it, so the check runs before
the first row is written.
"""

from __future__ import annotations

from eventledger._validation import PreparedEvent
from eventledger.records import ExpectedState
from eventledger.stores.postgres.schema import Marker

__all__ = [
    "COMMAND_KEY_CONSTRAINT",
    "EXPECTED_CODES",
    "append_many_sql",
    "append_one_sql",
    "pack",
]

COMMAND_KEY_CONSTRAINT = "commands_idempotency_key_key"

EXPECTED_CODES = {
    ExpectedState.ANY: -1,
    ExpectedState.STREAM_EXISTS: -2,
    ExpectedState.NO_STREAM: 0,
}


def append_one_sql(q: str, marker: Marker | None = None, *, command: bool = False) -> str:
    """Append one event: $1 stream, $2 expected code, $3-$7 the event's fields
    ($8 the transaction's earlier event count, inside a transaction: with its `marker`;
    with `command`, $8-$16 the command's record, see :func:`_command_sql`)."""
    values = "$3, $1, c.version + 1, $4, $5, $6, $7, c.at"
    return _append_sql(
        q, marker, values, "", "$8::bigint" if marker else "", 8 if command else None
    )


def append_many_sql(q: str, marker: Marker | None = None, *, command: bool = False) -> str:
    """Append a batch: $1 stream, $2 expected code, $3 the events as one JSON array
    ($4 the transaction's earlier event count, inside a transaction; with `command`,
    $4-$12 the command's record)."""
    values = (
        "(u.e->>'i')::uuid, $1, c.version + u.n, u.e->>'t', (u.e->>'s')::integer,"
        " u.e->'d', u.e->'m', c.at"
    )
    unnest = ", json_array_elements($3::json) WITH ORDINALITY AS u(e, n)"
    return _append_sql(
        q, marker, values, unnest, "$4::bigint" if marker else "", 4 if command else None
    )


def _command_sql(q: str, first: int) -> str:
    """The command's record, written by the append's own statement when it inserted its
    events: ${first}.. are the command's id, name, idempotency key, payload hash,
    payload, correlation id, causation id, actor and the handler's value. The result
    is made here from what was inserted, in the shape of ``CommandResult.to_json``. A
    key recorded already fails the whole statement (``COMMAND_KEY_CONSTRAINT``)."""
    p = [f"${first + n}" for n in range(9)]
    return f""", recorded AS (
            INSERT INTO {q}.commands (id, name, idempotency_key, payload_hash, payload,
                                      correlation_id, causation_id, actor, result)
            SELECT {p[0]}::uuid, {p[1]}::text, {p[2]}::text, {p[3]}::text, {p[4]}::jsonb,
                   {p[5]}::text, {p[6]}::text, {p[7]}::text,
                   jsonb_build_object(
                       'command_id', {p[0]}::uuid::text, 'command', {p[1]}::text,
                       'writes', jsonb_build_array(jsonb_build_object(
                           'stream_id', $1::text, 'version', w.version,
                           'position', w.position, 'events', w.events)),
                       'position', w.position, 'value', {p[8]}::jsonb)
              FROM (SELECT max(version) AS version, max(position) AS position,
                           count(*) AS events FROM inserted) w
             WHERE w.events > 0
        )"""


def _append_sql(
    q: str,
    marker: Marker | None,
    values: str,
    unnest: str,
    base: str = "",
    command: int | None = None,
) -> str:
    # The index within the transaction: the event's place in this statement, plus the
    # number of events the transaction appended before (`base`, a parameter).
    index = (f" + {base}" if base else "") + (" + u.n - 1" if unnest else "")
    exists = EXPECTED_CODES[ExpectedState.STREAM_EXISTS]
    # The comment names the statement where operators look (pg_stat_activity).
    held = "true"
    if marker is not None:
        held = f"""CASE
                WHEN current_setting('{marker.flag}', true) = 'on' THEN true
                WHEN pg_current_xact_id_if_assigned() IS NOT NULL
                    THEN {q}.refuse_late_append()
                ELSE set_config('{marker.flag}', 'on', true) = 'on'
            END"""
    return f"""/* eventledger append */
        WITH marker AS (
            SELECT {held} AS held
        ), last AS (
            SELECT e.version, e.recorded_at FROM {q}.events e
             WHERE e.stream_id = $1 ORDER BY e.version DESC LIMIT 1
        ), current AS (
            -- greatest() skips NULL; time never runs backwards within a stream
            -- after events deleted for good (eventledger.retention), versions go on
            SELECT greatest(coalesce(max(l.version), 0), (SELECT m.deleted_before - 1
                     FROM {q}.stream_marks m WHERE m.stream_id = $1)) AS version,
                   greatest(clock_timestamp(), max(l.recorded_at)) AS at
              FROM last l
        ), inserted AS (
            INSERT INTO {q}.events (position, id, stream_id, version, type,
                                    schema_version, data, metadata, recorded_at)
            SELECT ((pg_current_xact_id()::text::bigint
                     + (SELECT o.xid_offset FROM {q}.position_offset o)) << 20){index},
                   {values}
              FROM marker m, current c{unnest}
             WHERE m.held AND CASE WHEN $2::bigint >= 0 THEN c.version = $2::bigint
                        WHEN $2::bigint = {exists} THEN c.version > 0
                        ELSE true END
            RETURNING version, position
        ){_command_sql(q, command) if command is not None else ""}
        SELECT (SELECT version FROM current), max(version), max(position) FROM inserted
    """


def pack(events: list[PreparedEvent]) -> bytes:
    """A batch as one JSON array. Types are checked identifiers and ids are UUIDs,
    so neither needs escaping; data and metadata are already encoded JSON."""
    return b"[%b]" % b",".join(
        b'{"i":"%s","t":"%s","s":%d,"d":%b,"m":%b}'
        % (str(e.id).encode(), e.type.encode(), e.schema_version, e.data, e.metadata)
        for e in events
    )
