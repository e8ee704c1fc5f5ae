"""The Lua scripts the Redis engine runs. A script runs atomically (no other command runs in
between, https://redis.io/docs/latest/develop/interact/programmability/eval-intro/), which
is what makes the seq of a channel unique across any number of nodes.

Keys of one channel share the hash tag ``{channel}``, so in a Redis Cluster they live in one
slot and a script may touch them together.

``EPOCH`` (shared prologue): the epoch is in the ``meta`` hash next to the seq counter. The
epoch changes only when the channel's data is really gone:

- ``meta`` is missing: Redis lost its data (restart without persistence, FLUSHALL, eviction);
- ``meta`` says seq > 0 but the stream is missing: the history went away on its own.

Then the caller's candidate epoch (random, made by the node) becomes the epoch, seq restarts
at 0 and every node sees the same new epoch, since the first script to run wins. A client
resuming with the old epoch is told ``reset``, never silently given seqs of another epoch.
"""

from __future__ import annotations

EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local lost = false
if not epoch then
  lost = true
elseif redis.call('EXISTS', KEYS[2]) == 0 and tonumber(redis.call('HGET', KEYS[1], 'seq')) > 0 then
  lost = true
end
if lost then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
"""

# KEYS: meta, stream, id key.  ARGV: candidate epoch, maxlen, body, channel, id ttl (s),
# fan-out channel, "1" when the publish carries a client id.
# Returns {epoch, seq, seen}: seq = -1 and seen = "EPOCH:SEQ" for an id already stored.
# The stream entry's ID is 0-SEQ, so XRANGE by seq needs no index of its own.
PUBLISH = (
    EPOCH
    + """
if ARGV[7] == '1' then
  if not redis.call('SET', KEYS[3], '', 'NX', 'EX', ARGV[5]) then
    return {epoch, -1, redis.call('GET', KEYS[3])}
  end
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. seq, 'm', ARGV[3])
if ARGV[7] == '1' then
  redis.call('SET', KEYS[3], epoch .. ':' .. seq, 'KEEPTTL')
end
local nl = '\\n'
redis.call('PUBLISH', ARGV[6], 'M' .. nl .. ARGV[4] .. nl .. epoch .. nl .. seq .. nl .. ARGV[3])
return {epoch, seq, ''}
"""
)

# KEYS: meta, stream.  ARGV: candidate epoch, how many newest entries to return.
# Returns {epoch, seq, entries newest first} in one atomic read.
SNAPSHOT = (
    EPOCH
    + """
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])
end
return {epoch, seq, entries}
"""
)

# The MQTT bridge's leader lock (see leader.py). KEYS: lock, fencing counter.
# ARGV: node id, ttl ms. Returns the fencing token when this node holds the lock, else 0.
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])
"""

# KEYS: position, fencing counter. ARGV: token, "EPOCH:SEQ". Writes the bridge's position
# only while the token is the newest one (a paused old leader cannot move it), 1 if written.
FENCED_SET = """
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
