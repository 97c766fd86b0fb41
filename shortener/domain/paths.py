"""The paths of what the service hands out in messages: recipients' phones and mail apps fetch
them, so the domain writes them into bodies and the HTTP layer serves them, from these."""

from __future__ import annotations

SHORT_LINK = "/{code}"
TRACKED_LINK = "/api/orgs/{org_hash}/r/{link_id}"
OPEN_PIXEL = "/api/orgs/{org_hash}/o/{link_id}"
