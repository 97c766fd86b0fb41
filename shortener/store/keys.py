"""Every Redis key of the service, and the fields of its hashes; `records.py` lays out the values.

Keys:
- `blocks`: counter of reserved serial blocks (see `serials.SerialAllocator`).
- `secret:codes`: the key of the code MAC, made once by whoever starts first.
- `l:{BLOCK}:{PART}`: hash of the links of one part of a serial block (`serials.PART_SIZE`
  links, an eighth of the block); field = slot in block (hex), value = an encoded
  `StoredLink`. Dozens of small fields in one listpack-encoded hash cost about half the memory
  of one key per link; finding one scans the hash, which is why a hash holds a part of a block
  and not a whole one (a tap's lookup scans an eighth as far, for about two bytes more per
  link). The hash lives until its latest link expires; each link carries its own expiry, since
  its neighbours may outlive it. One more field, `base` (never a hex number), holds the base
  URL of the hash's short links: a block is only ever issued by one process, with one base URL.
  `l:{BLOCK}`: the links of a whole block in one hash, as they were kept before blocks were
  split in parts: read (the tap script asks there when a part has no such link), and changed
  in place, until they expire; no link is written there any more.
- `n:{BLOCK}:{PART}`: the tap counts of the links of `l:{BLOCK}:{PART}`, a string of signed
  32-bit counters (`BITFIELD`), two per link: people's at `#{2 * slot}`, bots' at
  `#{2 * slot + 1}`, slot = the link's place in its part; living as long as those links. A
  counter is found by its offset, where a field of a hash is found by a scan; the shared hash
  tag keeps counts and links in one cluster slot. `n:{BLOCK}`: the counts of the links of
  `l:{BLOCK}`, slot = place in the block. `k:{BLOCK}`: tap counts kept as hash fields
  `{slot}:c` and `{slot}:b` before the counters: read, added to them, until the block's links
  expire; a count moved to the bots' is taken off the people's counter, which may so go below
  zero.
- `d:{BLOCK}`: when and why links of the block were disabled, field = slot in block (hex),
  value `AT REASON` (see `records.encode_takedown`); only ops read it, the tap path sees the
  takedown in the link record itself. Lives as long as the latest disabled link of the block.
- `m:{org}:{message_id}`: a shortened message's result, so that a retry returns it again.
- `{o:ORG}:ix`: the org's stream of interactions (fields: t type, u url, b bot, r why a bot's
  (`records.bot_reason_code`), x "1" for an open through a mail client's image proxy, g
  campaign, and l link id, k code, m message id, p contact id unless the contact had opted
  out);
  `{o:ORG}:consent`: hash contact id ->
  "1 MS"/"0 MS" (tracking allowed / opted out, set at MS milliseconds since the epoch; the
  flag alone in records written before the time was kept). The shared hash tag keeps both in
  one cluster slot, so the recorder reads consent and appends the interaction in one script.
- `{o:ORG}:ev`: the org's stream of other events for its webhooks (`contact.erased`: t "e",
  p contact id, ni and nl the interactions and links erased); `{o:ORG}:added`: how many
  entries both streams were ever given, against which each endpoint's `read` counter says
  how many it has not read yet.
- `{o:ORG}:cb:{BUCKET}`: the contact index, hash contact id -> what names the contact, space
  separated: "i" + interaction id, "l" + serial (hex) of a link record; so that erasing a
  contact costs in proportion to its own data. Contacts are spread over CONTACT_BUCKETS
  buckets, small enough to stay listpack-encoded (a few bytes a contact, where a key of its
  own costs a couple of hundred). A contact whose field grew long goes on in
  `{o:ORG}:c:{CONTACT}`, a list of its own. Each lives as long as the longest-lived of its
  entries.
- `{o:ORG}:wh`: hash endpoint name -> the endpoint as JSON (url, events, include_bots,
  secret, created_at). Each endpoint has a consumer group `wh:{NAME}` on both streams, made
  when the endpoint is, so that it gets the events from then on; pending entries of the
  group are its deliveries not yet made, and survive a crash of whoever read them.
  `{o:ORG}:wh:{NAME}:read`: entries the group has read; `:retry`: sorted set entry id ->
  when its next attempt is due (ms), also the lease of an attempt under way; `:tries`: hash
  entry id -> attempts made; `:failed`: sorted set entry id -> when it was given up (ms).
  Given-up entries stay pending in the group until delivered by a replay.
- `webhook-orgs`: set of orgs with webhook endpoints; `webhooks:version`: counter raised by
  every change of an endpoint, so that delivering processes know when to read them again.
- `{o:ORG}:ah:{DAY}`: the org's aggregate counts of one UTC day (days since the epoch) by
  hour: field `{HOUR}:{METRIC}` for the whole org and `{HOUR}:{METRIC}:{CAMPAIGN}` for one
  campaign, METRIC one of `ANALYTICS_METRICS`. `{o:ORG}:ad:{DAY}`: the day's totals per
  campaign, field `{METRIC}:{CAMPAIGN}` (and `l:{CAMPAIGN}`: links issued); `{o:ORG}:aw:{WEEK}`
  the same for a week (days since the epoch // 7), so that a list of campaigns over a month
  reads four week hashes and a few day hashes, not thirty. Each lives until its day or week is
  `analytics_retention_days` old; they hold counts only, nothing that names a person,
  message or link. Clicks and opens are counted when they settle (`scripts.SETTLE`), machines'
  by reason too (hourly, metric `bot_reason_metric`); taps on untracked codes and links
  issued are summed in memory and added once a second.
- `{o:ORG}:settled`: the id of the org's last settled interaction: every interaction up to it
  has its final judgement. `{o:ORG}:judged`: hash interaction id -> why it is a bot's
  (`records.bot_reason_code`), for those judged a machine's only when they settled (honeypot,
  burst, too soon); lives as long as interactions. Both written together by `scripts.SETTLE`.
- `{o:ORG}:act:{GROUP}`: what happened lately to one message (one shortened with a
  `message_id`): a list of "MS LINK TYPE CREATED" (time in ms, link id, c or o, the
  link's creation in seconds), kept a few minutes, for judging its interactions when they
  settle. `{o:ORG}:scan:{GROUP}`: when (ms) its honeypot link was fetched. GROUP is a hash
  (`keys.group_of`), so that no key names a message or a person.
- `settler`: which process settles interactions now, and for how long (a lease).
- `orgs`: hash org hash -> org id, to find the org of a signed link whose record is gone.
- `x:{hour}`: hash `{org}:{minute}` -> number of the org's codes expiring in that minute of
  the hour (hours since the epoch, minutes 0-59), living until the hour is over: the index
  behind "what expires soon". At most 60 small fields per org and hour, a few bytes each,
  where each code costs about a hundred.
- `q:{org}`: how many messages the org shortened in its current window of the per-org shorten
  limit; the window starts with the first message after the last one ended, and the counter
  expires with it, so its TTL is the time until the org may shorten again. Counted by
  `scripts.TAKE_QUOTA` on this one key, where every worker and instance sees it.
- `org:{ORG}`: the org's settings (domains, destination patterns, fallback URL, times) as JSON,
  for orgs changed through the admin routes or the CLI; `org-ids`: set of those orgs.
- `domain:{HOST}`: the org that owns the branded domain HOST (IDNA A-label form). Set only
  where missing (`scripts.CLAIM_DOMAIN`), so two orgs can never both claim one domain.
- `api-keys`: hash key id -> "ORG SHA256HEX CREATED_MS", the org API keys made through the
  admin routes or the CLI, kept only as their SHA-256; `api-keys:used`: hash key id -> when
  the key was last used (milliseconds), written at most once a minute per key.
- `tenancy:version`: counter raised by every change of an org or its keys, so that workers
  that keep orgs in memory know when to read them again.

No command or script touches keys of two hash slots, so the same operations run on a Redis
Cluster, where each slot lives on one master.
"""

from __future__ import annotations

import hashlib
import zlib

from shortener.model import Visitor
from shortener.store.serials import block_of, part_of_block, slot_in_block, slot_in_part

CODE_MAC_KEY = "secret:codes"
BLOCKS_KEY = "blocks"
ORGS_KEY = "orgs"
ORG_IDS_KEY = "org-ids"
TENANCY_VERSION_KEY = "tenancy:version"
API_KEYS_KEY = "api-keys"
WEBHOOK_ORGS_KEY = "webhook-orgs"
WEBHOOKS_VERSION_KEY = "webhooks:version"
KEYS_USED_KEY = "api-keys:used"
# The field of a block's link hash that holds the base URL its links were issued on; slot
# fields are hex numbers. An org issuing on its own domain has the field of the prefix and its
# name.
BASE_URL_FIELD = "base"
ORG_BASE_URL_PREFIX = "base:"
# Which of a slot's two tap counters a visitor's tap goes to; a probe counts nowhere.
PEOPLE_COUNTER, BOTS_COUNTER = 0, 1
TAP_COUNTERS = {
    Visitor.PERSON: PEOPLE_COUNTER,
    Visitor.PROXY: PEOPLE_COUNTER,
    Visitor.BOT: BOTS_COUNTER,
    Visitor.PREFETCH: BOTS_COUNTER,
    Visitor.PROBE: None,
}
COUNTER_TYPE = "i32"
# The suffixes of the hash fields of counts kept before the counters.
_LEGACY_COUNT_SUFFIXES = {PEOPLE_COUNTER: "c", BOTS_COUNTER: "b"}


def link_key(serial: int) -> str:
    return f"l:{{{block_of(serial)}}}:{part_of_block(serial)}"


def count_key(serial: int) -> str:
    return f"n:{{{block_of(serial)}}}:{part_of_block(serial)}"


def block_link_key(serial: int) -> str:
    """Where the link `serial` was kept before its block's links were split in parts."""
    return f"l:{{{block_of(serial)}}}"


def block_count_key(serial: int) -> str:
    return f"n:{{{block_of(serial)}}}"


def legacy_count_key(serial: int) -> str:
    return f"k:{{{block_of(serial)}}}"


def takedown_key(serial: int) -> str:
    return f"d:{{{block_of(serial)}}}"


def link_field(serial: int) -> str:
    return format(slot_in_block(serial), "x")


def counter_offset(serial: int, counter: int) -> str:
    """A tap counter of the link `serial` in its part's count string (`BITFIELD` offset)."""
    return f"#{2 * slot_in_part(serial) + counter}"


def block_counter_offset(serial: int, counter: int) -> str:
    """A tap counter of the link `serial` in its block's count string, as kept before."""
    return f"#{2 * slot_in_block(serial) + counter}"


def legacy_count_field(serial: int, counter: int) -> str:
    return f"{link_field(serial)}:{_LEGACY_COUNT_SUFFIXES[counter]}"


# Aggregate counts: people's clicks, opens, bots' clicks, anonymous clicks (of the people's),
# people's taps on untracked codes; and links issued, per campaign and day.
CLICKS_METRIC = "c"
OPENS_METRIC = "o"
BOT_CLICKS_METRIC = "b"
ANONYMOUS_CLICKS_METRIC = "a"
TAPS_METRIC = "t"
LINKS_METRIC = "l"
ANALYTICS_METRICS = (
    CLICKS_METRIC,
    OPENS_METRIC,
    BOT_CLICKS_METRIC,
    ANONYMOUS_CLICKS_METRIC,
    TAPS_METRIC,
)


def bot_reason_metric(type_code: str, reason_code: str) -> str:
    """The hourly metric of machines' interactions of a type (`c`, `o`) for one reason
    (`records.bot_reason_code`)."""
    return f"r{type_code}{reason_code}"


def analytics_hours_key(org: str, day: int) -> str:
    return f"{{o:{org}}}:ah:{day}"


def analytics_days_key(org: str, day: int) -> str:
    return f"{{o:{org}}}:ad:{day}"


def analytics_weeks_key(org: str, week: int) -> str:
    return f"{{o:{org}}}:aw:{week}"


def hour_field(hour: int, metric: str, campaign: str | None = None) -> str:
    return f"{hour}:{metric}" if campaign is None else f"{hour}:{metric}:{campaign}"


def campaign_field(metric: str, campaign: str) -> str:
    return f"{metric}:{campaign}"


SETTLER_KEY = "settler"


def settled_key(org: str) -> str:
    return f"{{o:{org}}}:settled"


def judged_key(org: str) -> str:
    return f"{{o:{org}}}:judged"


def group_of(message_id: str | None) -> str | None:
    """What an interaction is judged together with: its message; None where the message had
    no id (each link may then be a message of its own) or the interaction is anonymous."""
    if message_id is None:
        return None
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def activity_key(org: str, group: str) -> str:
    return f"{{o:{org}}}:act:{group}"


def scan_key(org: str, group: str) -> str:
    return f"{{o:{org}}}:scan:{group}"


def message_key(org: str, message_id: str) -> str:
    return f"m:{org}:{message_id}"


def interactions_key(org: str) -> str:
    return f"{{o:{org}}}:ix"


def consent_key(org: str) -> str:
    return f"{{o:{org}}}:consent"


def events_key(org: str) -> str:
    return f"{{o:{org}}}:ev"


def added_key(org: str) -> str:
    return f"{{o:{org}}}:added"


# Buckets of an org's contact index: a thousand contacts or fewer each up to a million contacts.
CONTACT_BUCKETS = 1024


def contact_bucket_key(org: str, contact_id: str) -> str:
    bucket = zlib.crc32(contact_id.encode("utf-8", "surrogatepass")) % CONTACT_BUCKETS
    return f"{{o:{org}}}:cb:{bucket}"


def contact_index_key(org: str, contact_id: str) -> str:
    """The list a contact's index goes on in once its field of the bucket grew long."""
    return f"{{o:{org}}}:c:{contact_id}"


def webhooks_key(org: str) -> str:
    return f"{{o:{org}}}:wh"


def webhook_group(name: str) -> str:
    return f"wh:{name}"


def webhook_key(org: str, name: str, part: str) -> str:
    """One of an endpoint's keys: `read`, `retry`, `tries` or `failed`."""
    return f"{{o:{org}}}:wh:{name}:{part}"


def shorten_quota_key(org: str) -> str:
    return f"q:{org}"


def expiring_key(hour: int) -> str:
    return f"x:{hour}"


def expiring_field(org: str, minute_of_hour: int) -> str:
    return f"{org}:{minute_of_hour}"


def org_and_minute(field: str) -> tuple[str, int]:
    """The org and minute of hour of an expiry index field (orgs hold no colon)."""
    org, colon, minute = field.rpartition(":")
    if not colon:
        # A field of the index as it was before it had minutes. Taken as the hour's first
        # minute, it counts only where the whole hour lies ahead, never for codes that may
        # have expired already.
        return field, 0
    return org, int(minute)


def org_key(org: str) -> str:
    return f"org:{org}"


def domain_key(host: str) -> str:
    return f"domain:{host}"
