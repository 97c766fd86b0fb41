"""The text toolkit: pure functions over message text, links and user agents; no I/O, and
nothing of the service."""
