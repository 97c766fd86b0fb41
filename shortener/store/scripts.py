"""The Lua scripts of the store: each does in one round trip what needs to happen at once."""

from shortener.store.keys import COUNTER_TYPE

# A contact's index field grows to this many bytes before its entries go to a list of its own.
INDEX_FIELD_BYTES = 512

# Write links of one block: KEYS are pairs of a part's links hash and its tap counts, and
# ARGV[4..] holds for each part how many field and value arguments follow, then those. Each
# hash also gets the base URL (field ARGV[2], value ARGV[3]), and then lives at least ARGV[1]
# ms, the longest life of its links: never shrunk, so that links written earlier with a longer
# lifetime stay alive. A part's tap counts (once there are any) are stretched with it, so they
# live as long as their links. One call a block, not a part: its parts share one hash tag.
SAVE_LINKS = """
local ttl = tonumber(ARGV[1])
local at = 4
for k = 1, #KEYS, 2 do
  local links, counts = KEYS[k], KEYS[k + 1]
  local last = at + tonumber(ARGV[at])
  redis.call('HSET', links, ARGV[2], ARGV[3], unpack(ARGV, at + 1, last))
  at = last + 1
  if redis.call('PTTL', links) < ttl then
    redis.call('PEXPIRE', links, ttl)
  end
  local counts_ttl = redis.call('PTTL', counts)
  if counts_ttl ~= -2 then
    local links_ttl = redis.call('PTTL', links)
    if counts_ttl < links_ttl then
      redis.call('PEXPIRE', counts, links_ttl)
    end
  end
end
return 1
"""


# Count ARGV[1] messages against the org's quota of ARGV[2] per window of ARGV[3] ms, or
# none of them where they do not all fit: a request is taken whole or refused whole. Returns 0
# when taken, else the milliseconds until the window ends. The window is set when the counter
# has none, so a counter never outlives its window.
TAKE_QUOTA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) <= tonumber(ARGV[2]) then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
  end
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left > 0 then
  return left
end
return tonumber(ARGV[3])
"""

# The hash that holds the link at field `field`, and the link (false where there is none): the
# hash of its part of its block, `links`, or else that of the whole block, `block_links`, where
# links were kept before blocks were split in parts.
_FIND_LINK = """
local function find_link(links, block_links, field)
  local value = redis.call('HGET', links, field)
  if value then return links, value end
  return block_links, redis.call('HGET', block_links, field)
end
"""

# Read a link (field ARGV[1] of KEYS[1]) and, if it is live (expiry after ARGV[3]), of a kind
# the caller follows (one of the letters ARGV[4]) and of the org ARGV[5] where that is given,
# count the tap at its counter (ARGV[2] of KEYS[2]; none for a probe): one round trip for the
# whole tap. A branded domain names its org: another org's code tapped there is not theirs to
# count. Nothing when KEYS[1] has no such link: the caller then asks again of its whole block's
# hash, where links were kept before (see _FIND_LINK).
# The record's kind is its first letter, its expiry the third word (hex).
TAP = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and ARGV[2] ~= '' and string.find(ARGV[4], string.sub(value, 1, 1), 1, true)
    and (not ARGV[5] or string.match(value, '^%S+ %S+ %S+ (%S+) ') == ARGV[5]) then
  local created_end = string.find(value, ' ', 3, true)
  local expires_end = string.find(value, ' ', created_end + 1, true)
  if tonumber(string.sub(value, created_end + 1, expires_end - 1), 16) > tonumber(ARGV[3]) then
    local counted = redis.call('BITFIELD', KEYS[2], 'OVERFLOW', 'SAT',
      'INCRBY', 'COUNTER_TYPE', ARGV[2], 1)
    -- Only a counter's first tap can have made the string: later ones find its expiry set.
    if counted[1] == 1 and redis.call('PTTL', KEYS[2]) < 0 then
      redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
    end
  end
end
return value
""".replace("COUNTER_TYPE", COUNTER_TYPE)

# Count a person's tap (at ARGV[1]) as a bot's (at ARGV[2]) in the count string KEYS[1], which
# lives as long as the links of its part (KEYS[2]); or, for a link kept in its whole block's
# hash (KEYS[4]), at ARGV[3] and ARGV[4] of KEYS[3].
MOVE_TO_BOTS = """
local counts, links, people, bots = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if redis.call('EXISTS', links) == 0 then
  counts, links, people, bots = KEYS[3], KEYS[4], ARGV[3], ARGV[4]
end
redis.call('BITFIELD', counts, 'OVERFLOW', 'SAT',
  'INCRBY', 'COUNTER_TYPE', people, -1, 'INCRBY', 'COUNTER_TYPE', bots, 1)
if redis.call('PTTL', counts) < 0 then
  redis.call('PEXPIRE', counts, redis.call('PTTL', links))
end
return 1
""".replace("COUNTER_TYPE", COUNTER_TYPE)

# Disable a link (KEYS[1], else KEYS[2]: see _FIND_LINK) of the org ARGV[3] (any org's where
# empty): upper-case its kind letter, which the tap script then no longer follows, and note
# when and why (ARGV[2]) in the block's takedown hash (KEYS[3]), kept as long as the link's
# hash is now, which covers the link's own life. Done once: a second takedown keeps the first
# one's time and reason. Returns the record as it was, or nothing when there is none of that
# org.
DISABLE = (
    _FIND_LINK
    + """
local links, value = find_link(KEYS[1], KEYS[2], ARGV[1])
if not value then
  return false
end
if ARGV[3] ~= '' and string.match(value, '^%S+ %S+ %S+ (%S+) ') ~= ARGV[3] then
  return false
end
local kind = string.sub(value, 1, 1)
if kind ~= string.upper(kind) then
  redis.call('HSET', links, ARGV[1], string.upper(kind) .. string.sub(value, 2))
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  local ttl = redis.call('PTTL', links)
  if redis.call('PTTL', KEYS[3]) < ttl then
    redis.call('PEXPIRE', KEYS[3], ttl)
  end
end
return value
"""
)

# Note `entry` in the index of the contact `contact`: its field of the bucket hash `bucket` while
# that stays short (a listpack hash keeps thousands of contacts in little memory), else its own
# list `overflow`, so that a contact with many entries never makes an append copy a long value.
# Each key is kept `keep_ms` at least.
_NOTE_IN_INDEX = """
local function note(bucket, overflow, contact, entry, keep_ms)
  local value = redis.call('HGET', bucket, contact)
  if not value then
    redis.call('HSET', bucket, contact, entry)
  elseif #value + #entry < INDEX_FIELD_BYTES then
    redis.call('HSET', bucket, contact, value .. ' ' .. entry)
  else
    redis.call('RPUSH', overflow, entry)
    if redis.call('PTTL', overflow) < keep_ms then
      redis.call('PEXPIRE', overflow, keep_ms)
    end
  end
  if redis.call('PTTL', bucket) < keep_ms then
    redis.call('PEXPIRE', bucket, keep_ms)
  end
end
""".replace("INDEX_FIELD_BYTES", str(INDEX_FIELD_BYTES))

# Consent is read at the moment of the interaction: one who has opted out since the
# message was sent leaves an interaction with nothing that points back to them. The campaign
# stays either way: it names a journey, not a person. An interaction that names its contact is
# added to the contact's index (KEYS[4] and KEYS[5], kept ARGV[10] ms at least), and every one
# is counted (KEYS[3]) for the webhooks' backlog. ARGV[13] is why it is a bot's (a
# `records.bot_reason_code`, or empty), ARGV[14] "1" for an open through an image proxy. What
# happened is also noted for judging its message's interactions when they settle: ARGV[11]
# ("MS LINK TYPE CREATED", or empty) on the list KEYS[6], kept ARGV[12] ms.
RECORD = (
    _NOTE_IN_INDEX
    + """
local fields = {'t', ARGV[3], 'u', ARGV[4], 'b', ARGV[5]}
if ARGV[13] ~= '' then
  table.insert(fields, 'r'); table.insert(fields, ARGV[13])
end
if ARGV[14] ~= '' then
  table.insert(fields, 'x'); table.insert(fields, ARGV[14])
end
if ARGV[9] ~= '' then
  table.insert(fields, 'g'); table.insert(fields, ARGV[9])
end
local contact = ARGV[1]
local consent = false
if contact ~= '' then
  consent = redis.call('HGET', KEYS[1], contact)
end
local named = not consent or string.sub(consent, 1, 1) ~= '0'
if named then
  table.insert(fields, 'l'); table.insert(fields, ARGV[6])
  table.insert(fields, 'k'); table.insert(fields, ARGV[7])
  table.insert(fields, 'm'); table.insert(fields, ARGV[8])
  table.insert(fields, 'p'); table.insert(fields, contact)
end
local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*', unpack(fields))
redis.call('INCR', KEYS[3])
if named and contact ~= '' then
  note(KEYS[4], KEYS[5], contact, 'i' .. id, tonumber(ARGV[10]))
end
if ARGV[11] ~= '' then
  redis.call('RPUSH', KEYS[6], string.match(id, '^(%d+)') .. ' ' .. ARGV[11])
  redis.call('PEXPIRE', KEYS[6], ARGV[12])
end
return id
"""
)

# Settle interactions up to ARGV[2] (the new value of the cursor KEYS[1]), unless another
# settler moved the cursor from ARGV[1] (empty: none yet) meanwhile: then nothing is written,
# and 0 answered. ARGV[4] pairs follow ARGV[4]: an interaction id and why it is a bot's, for
# the hash KEYS[2] (kept ARGV[3] ms); then quadruples of a key's index in KEYS, a field, an
# amount and when (ms) that key expires: the aggregate counts of what settled.
SETTLE = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then return 0 end
local judged = tonumber(ARGV[4])
local i = 5
for _ = 1, judged do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
if judged > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
while i <= #ARGV do
  local key, amount = KEYS[tonumber(ARGV[i])], tonumber(ARGV[i + 2])
  if redis.call('HINCRBY', key, ARGV[i + 1], amount) == amount then
    redis.call('PEXPIREAT', key, ARGV[i + 3])
  end
  i = i + 4
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# Extend the lease KEYS[1] by ARGV[2] ms if ARGV[1] still holds it: 1 if so, else 0.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# A link (field ARGV[1] of KEYS[1], else of KEYS[2]: see _FIND_LINK) and the base URL it was
# issued on: its org's own (field ARGV[3] followed by the org), or else its hash's (field
# ARGV[2]). Empty when there is no link.
READ_LINK = (
    _FIND_LINK
    + """
local links, value = find_link(KEYS[1], KEYS[2], ARGV[1])
if not value then return {} end
local org = string.match(value, '^%S+ %S+ %S+ (%S+) ')
local base = redis.call('HGET', links, ARGV[3] .. org) or redis.call('HGET', links, ARGV[2])
return {value, base or ''}
"""
)

# The owner of a domain (KEYS[1]): ARGV[1] if the domain had none, else the one it had.
CLAIM_DOMAIN = """
local owner = redis.call('GET', KEYS[1])
if owner then return owner end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"""

# Gives a domain (KEYS[1]) up, only if org ARGV[1] owns it.
RELEASE_DOMAIN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# Note ARGV[3..] in the index of the contact ARGV[2] (KEYS[1] and KEYS[2], see _NOTE_IN_INDEX),
# kept ARGV[1] ms at least.
INDEX = (
    _NOTE_IN_INDEX
    + """
for i = 3, #ARGV do
  note(KEYS[1], KEYS[2], ARGV[2], ARGV[i], tonumber(ARGV[1]))
end
return 1
"""
)

# Take the contact ARGV[3] (as records write it) out of the link ARGV[1] of KEYS[1] (else of
# KEYS[2]: see _FIND_LINK) where it is the org ARGV[2]'s: the link keeps redirecting and names
# nobody. 1 if it did.
ERASE_LINK_CONTACT = (
    _FIND_LINK
    + """
local links, value = find_link(KEYS[1], KEYS[2], ARGV[1])
if not value then return 0 end
local parts = {}
local start = 1
while true do
  local space = string.find(value, ' ', start, true)
  if not space then
    table.insert(parts, string.sub(value, start))
    break
  end
  table.insert(parts, string.sub(value, start, space - 1))
  start = space + 1
end
if parts[4] ~= ARGV[2] or parts[6] ~= ARGV[3] then return 0 end
parts[6] = ''
redis.call('HSET', links, ARGV[1], table.concat(parts, ' '))
return 1
"""
)

# Lease up to ARGV[3] entries of a retry schedule (KEYS[1]) that are due by ARGV[1]: each is
# pushed ARGV[2] ms ahead, so that no other process takes it while this one attempts it.
LEASE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return due
"""

# An attempt at entry ARGV[1] failed: count it (KEYS[2]); after ARGV[2] attempts give it up
# (KEYS[3], at ARGV[3] ms), else schedule the next one (KEYS[1]) ARGV[4] ms after ARGV[3],
# doubled for each attempt before and scaled by the jitter ARGV[5]. Returns the attempts made
# and 1 if it was given up.
ATTEMPT_FAILED = """
local tries = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
if tries >= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  return {tries, 1}
end
local delay = tonumber(ARGV[4]) * math.pow(2, tries - 1) * tonumber(ARGV[5])
redis.call('ZADD', KEYS[1], math.floor(tonumber(ARGV[3]) + delay), ARGV[1])
return {tries, 0}
"""
