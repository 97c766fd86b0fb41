"""The Lua scripts of the store: each does in one round trip what needs to happen at once."""

# HSET the fields, then stretch the hash's life to cover the longest-lived of them. Not
# shrinking it keeps links written earlier with a longer lifetime alive. The block's tap counts
# (KEYS[2], once there are any) are stretched with it, so they live as long as their links.
SAVE_LINKS = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local counts_ttl = redis.call('PTTL', KEYS[2])
if counts_ttl ~= -2 then
  local links_ttl = redis.call('PTTL', KEYS[1])
  if counts_ttl < links_ttl then
    redis.call('PEXPIRE', KEYS[2], links_ttl)
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

# Read a link and, if it is live, of a kind the caller follows and (where ARGV[5] names one)
# of that org, count the tap: one round trip for the whole tap. A branded domain names its org:
# another org's code tapped there is not theirs to count.
TAP = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and ARGV[3] ~= '' and string.find(ARGV[4], string.sub(value, 1, 1), 1, true)
    and (ARGV[5] == '' or string.match(value, '^%S+ %S+ %S+ (%S+) ') == ARGV[5]) then
  local expires = tonumber(string.match(value, '^%S+ %x+ (%x+) '), 16)
  if expires > tonumber(ARGV[2]) then
    redis.call('HINCRBY', KEYS[2], ARGV[1] .. ':' .. ARGV[3], 1)
    if redis.call('PTTL', KEYS[2]) < 0 then
      redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
    end
  end
end
return value
"""

# Disable a link of the org ARGV[3] (any org's where empty): upper-case its kind letter, which
# the tap script then no longer follows, and note when and why (ARGV[2]) in the block's
# takedown hash (KEYS[2]), kept as long as the block's links are now, which covers the link's
# own life. Done once: a second takedown keeps the first one's time and reason. Returns the
# record as it was, or nothing when there is none of that org.
DISABLE = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then
  return false
end
if ARGV[3] ~= '' and string.match(value, '^%S+ %S+ %S+ (%S+) ') ~= ARGV[3] then
  return false
end
local kind = string.sub(value, 1, 1)
if kind ~= string.upper(kind) then
  redis.call('HSET', KEYS[1], ARGV[1], string.upper(kind) .. string.sub(value, 2))
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  local ttl = redis.call('PTTL', KEYS[1])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return value
"""

# Consent is read at the moment of the interaction: one who has opted out since the
# message was sent leaves an interaction with nothing that points back to them. The campaign
# stays either way: it names a journey, not a person.
RECORD = """
local fields = {'t', ARGV[3], 'u', ARGV[4], 'b', ARGV[5]}
if ARGV[9] ~= '' then
  table.insert(fields, 'g'); table.insert(fields, ARGV[9])
end
local contact = ARGV[1]
local consent = false
if contact ~= '' then
  consent = redis.call('HGET', KEYS[1], contact)
end
if not consent or string.sub(consent, 1, 1) ~= '0' then
  table.insert(fields, 'l'); table.insert(fields, ARGV[6])
  table.insert(fields, 'k'); table.insert(fields, ARGV[7])
  table.insert(fields, 'm'); table.insert(fields, ARGV[8])
  table.insert(fields, 'p'); table.insert(fields, contact)
end
return redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[2], '*', unpack(fields))
"""

# A link (field ARGV[1] of KEYS[1]) and the base URL it was issued on: its org's own (field
# ARGV[3] followed by the org), or else the block's (field ARGV[2]). Empty when there is no link.
READ_LINK = """
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return {} end
local org = string.match(value, '^%S+ %S+ %S+ (%S+) ')
local base = redis.call('HGET', KEYS[1], ARGV[3] .. org) or redis.call('HGET', KEYS[1], ARGV[2])
return {value, base or ''}
"""

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
