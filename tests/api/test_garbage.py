"""Shortening leaves nothing for the cycle collector.

The service runs with the collector tuned to run rarely (see `http.app`), so that no tap
waits for a pass over the heap; objects caught in reference cycles then outlive their request
by a long way, and a worker's memory grows with every message it shortens. Everything a
shorten call makes must be freed by reference counting alone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from shortener.config import Settings
from shortener.domain.messages import Recipient, ShortenRequest
from shortener.runtime import open_runtime

CALLS = 30
MESSAGES = [
    ShortenRequest(body="Deals https://shop.example.com/a and user:pw@shop.example.com/b"),
    ShortenRequest(
        body="Hi https://shop.example.com/c",
        recipient=Recipient(contact_id="c-1", tracking_consent=True),
        campaign="spring",
    ),
    ShortenRequest(
        content_type="html",
        body='<p><a href="https://shop.example.com/d?x=1&amp;y=2">d</a></p></body>',
        recipient=Recipient(contact_id="c-2", tracking_consent=True),
    ),
]


async def test_shortening_leaves_no_reference_cycles(
    make_settings: Callable[..., Settings], redis: object
) -> None:
    async with open_runtime(make_settings()) as runtime:
        shortening = (await runtime.services()).shortening
        await shortening.shorten_many("org-a", MESSAGES)
        gc.collect()
        gc.disable()
        try:
            for _ in range(CALLS):
                await shortening.shorten_many("org-a", MESSAGES)
            left_to_the_collector = gc.collect()
        finally:
            gc.enable()
    # A few objects of the event loop's own may need the collector; a cycle per call may not.
    assert left_to_the_collector < CALLS, left_to_the_collector
