"""Who holds readers back: the transaction at the visible limit, named.

Readers take events only below the oldest transaction that may still append
(``visible_limit()``, see ``sql/0007_writer_horizon.sql``). When committed events
wait above that limit, the transaction that sets it is found in ``pg_locks``
(the lock on its own id names its backend) and described from
``pg_stat_activity``, or ``pg_prepared_xacts`` for a prepared transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventledger.records import Horizon, HorizonHolder

if TYPE_CHECKING:
    import asyncpg

__all__ = ["read_horizon"]

MAX_COUNTED = 1_000_000


def _horizon_sql(q: str) -> str:
    return f"""
        WITH lim AS MATERIALIZED (SELECT {q}.visible_limit() AS l),
        off AS (SELECT o.xid_offset FROM {q}.position_offset o)
        SELECT coalesce((SELECT max(position) FROM {q}.events), 0),
               coalesce((SELECT max(e.position) FROM {q}.events e
                          WHERE e.position < (SELECT l FROM lim)), 0),
               (SELECT count(*) FROM (SELECT 1 FROM {q}.events e
                                      WHERE e.position >= (SELECT l FROM lim)
                                      LIMIT {MAX_COUNTED}) AS held),
               (SELECT (lim.l >> 20) - off.xid_offset FROM lim, off)
    """


_HOLDER_SQL = """
    SELECT l.pid, a.datname, a.usename, a.application_name, a.state, a.xact_start,
           left(btrim(regexp_replace(a.query, '[[:space:]]+', ' ', 'g')), 80),
           p.gid, p.database, p.owner, p.prepared
      FROM (SELECT $1::bigint AS xid) AS want
      LEFT JOIN pg_locks l
             ON l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
            AND l.transactionid::text::bigint = want.xid % 4294967296
      LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      LEFT JOIN pg_prepared_xacts p ON p.transaction::text::bigint = want.xid % 4294967296
     LIMIT 1
"""


async def read_horizon(conn: asyncpg.Connection, schema: str) -> Horizon:
    """The committed and the visible head, and who holds readers back (if anyone)."""
    q = f'"{schema}"'
    row = await conn.fetchrow(_horizon_sql(q))
    assert row is not None
    committed, visible, held, limit_xid = row[0], row[1], row[2], row[3]
    holder = None
    if held:
        holder = _holder(limit_xid, await conn.fetchrow(_HOLDER_SQL, limit_xid))
    return Horizon(int(committed), int(visible), int(held), holder)


def _holder(xid: int, row: Any) -> HorizonHolder:
    if row is None:
        return HorizonHolder(transaction_id=xid)
    pid, database, user, application, state, started, query, gid, p_db, p_owner, prepared = row
    if gid is not None:
        return HorizonHolder(
            transaction_id=xid,
            database=p_db,
            user=p_owner,
            state="prepared",
            transaction_start=prepared,
            prepared_gid=gid,
        )
    return HorizonHolder(
        transaction_id=xid,
        pid=pid,
        database=database,
        user=user,
        application_name=application,
        state=state,
        transaction_start=started,
        query=query,
    )
