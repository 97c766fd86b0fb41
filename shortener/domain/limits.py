"""What one message, one call and one page may hold: each limit written once, read by the
domain that enforces it, the models that validate it and the document that states it."""

from __future__ import annotations

# The most a concatenated SMS can carry: 255 segments of 153 GSM-7 characters, rounded up.
MAX_SMS_CHARACTERS = 40_000
# Links found in one message (listed in `links` or `skipped`). Each link costs a stored record
# for a year and a few hundred bytes of answer, and a body this size can hold thousands of
# them: 40,000 SMS characters fit about 4,000 links, a megabyte of HTML tens of thousands. A
# real SMS carries a handful of links and a newsletter a few dozen to a couple of hundred, so
# these leave room for every real message while bounding what one message costs.
MAX_LINKS_PER_TEXT = 100
MAX_LINKS_PER_HTML = 500
# Links found in all the messages of one batch. A batch of 1000 messages with a few links
# each stays well below it. Without it, 1 MiB of short links issued about 97,000 links in one
# call, held 220 MB more memory while answering and sent back 14 MB; the worst batch within
# these limits (10,000 tracked links) holds about 40 MB more and answers about 6 MB.
MAX_LINKS_PER_BATCH = 10_000
MAX_BATCH = 1000
MAX_NON_TRACKABLE = 1000
# Contact and message ids are the caller's own; a campaign names a journey.
MAX_ID_LENGTH = 256
MAX_CAMPAIGN_LENGTH = 128
# Interactions read per page.
MIN_PAGE = 1
MAX_PAGE = 1000
DEFAULT_PAGE = 100
# The window of the per-org shorten limit: it starts with the first message an org shortens
# after the previous window ended.
SHORTEN_LIMIT_WINDOW_MS = 60_000
# What one org's settings may hold: a handful of branded domains, and host patterns for the
# destinations it may or may not link to.
MAX_ORG_DOMAINS = 20
MAX_ORG_PATTERNS = 500
MAX_FALLBACK_URL_LENGTH = 2048

# The longest reason a takedown may give.
MAX_TAKEDOWN_REASON_LENGTH = 500

# Webhook endpoints: per org, the length of a name and of a URL.
MAX_WEBHOOKS = 20
MAX_WEBHOOK_URL_LENGTH = 2048
# Failed events listed at most per call.
MAX_FAILED_LISTED = 1000
# Interactions one filtered read of `/v1/interactions` looks through at most: a filter that
# matches few of them answers a short page and a cursor to read on from, never a long scan.
MAX_SCANNED_PER_PAGE = 10_000

# Buckets one analytics query answers at most: 31 days by the hour, ten years by the day (the
# longest retention). Each costs a few fields of one hash; the bound keeps a query's work, and
# its answer, small.
MAX_ANALYTICS_HOURS = 31 * 24
MAX_ANALYTICS_DAYS = 3660
# The longest ISO 8601 time a query may give: anything longer is no time.
MAX_TIME_LENGTH = 40
