"""The Lua scripts the query cache runs in Redis: each reads and changes a read model's
state in one atomic step (see ``docs/query-cache.md``).

A read model's state is one hash:

- ``inc``: the incarnation, a random id given when the hash is made; a Redis that
  lost its data (a restart with nothing on disk, a flush) starts a new one, so that
  nothing computed before can match;
- ``v``: the version, raised before and after every change commits;
- ``until``: until when (Redis time, ms) the process that runs the read model vouches
  for it; after that, nothing is served or kept;
- ``t:<token>``: one field per change in flight (marked, not yet known to have
  committed); while there is one, nothing is served or kept.

An entry is a hash too: ``inc``, ``v`` (the state's when the answer was computed),
``pos`` and ``gen`` (the read model's checkpoint and generation then), ``body``.
"""

from __future__ import annotations

__all__ = ["BEGIN", "LOOKUP", "RELEASE", "RENEW", "STORE"]

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(key)
  local flat = redis.call('HGETALL', key)
  local s = {tokens = 0}
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) == 't:' then
      s.tokens = s.tokens + 1
    else
      s[flat[i]] = flat[i + 1]
    end
  end
  return s
end
local function ensure(key, fresh)
  if redis.call('HEXISTS', key, 'inc') == 0 then
    redis.call('HSET', key, 'inc', fresh, 'v', 0)
  end
  redis.call('PEXPIRE', key, 86400000)  -- a read model no one runs for a day is forgotten
end
local function grant(key, now, not_after, window)
  if not_after > 0 and now <= not_after then
    redis.call('HSET', key, 'until', now + window)
  end
end
"""

BEGIN = (
    _COMMON
    + """
-- A change is about to commit. KEYS: state. ARGV: fresh incarnation, token, not_after,
-- window, taking over ('1': every token is stale), stale tokens of this process...
local now = now_ms()
ensure(KEYS[1], ARGV[1])
if ARGV[5] == '1' then
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 't:' then redis.call('HDEL', KEYS[1], field) end
  end
end
for i = 6, #ARGV do redis.call('HDEL', KEYS[1], 't:' .. ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 't:' .. ARGV[2], now)
grant(KEYS[1], now, tonumber(ARGV[3]), tonumber(ARGV[4]))
return now
"""
)

RELEASE = (
    _COMMON
    + """
-- Changes committed (or were settled after an outage). KEYS: state. ARGV: fresh
-- incarnation, not_after, window, their tokens...
local now = now_ms()
ensure(KEYS[1], ARGV[1])
for i = 4, #ARGV do redis.call('HDEL', KEYS[1], 't:' .. ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
grant(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
return now
"""
)

RENEW = (
    _COMMON
    + """
-- The runner is alive. KEYS: state. ARGV: fresh incarnation, not_after, window.
local now = now_ms()
ensure(KEYS[1], ARGV[1])
grant(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
return now
"""
)

LOOKUP = (
    _COMMON
    + """
-- A reader looks for an answer. KEYS: state, entry. Reads only.
local now = now_ms()
local s = state(KEYS[1])
if not s.inc or tonumber(s['until'] or '0') < now then return {'unvouched'} end
if s.tokens > 0 then return {'busy'} end
local e = redis.call('HMGET', KEYS[2], 'inc', 'v', 'pos', 'gen', 'body')
if e[1] == s.inc and e[2] == s.v then
  return {'hit', s.inc, s.v, e[3], e[4], e[5]}
end
return {'miss', s.inc, s.v}
"""
)

STORE = (
    _COMMON
    + """
-- A reader keeps what it computed, if nothing changed since its lookup. KEYS: state,
-- entry. ARGV: inc, v (of the lookup), pos, gen, body, ttl (ms).
local now = now_ms()
local s = state(KEYS[1])
if s.inc ~= ARGV[1] or s.v ~= ARGV[2] or s.tokens > 0
   or tonumber(s['until'] or '0') < now then
  return 0
end
redis.call('HSET', KEYS[2], 'inc', ARGV[1], 'v', ARGV[2], 'pos', ARGV[3], 'gen', ARGV[4],
           'body', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""
)
