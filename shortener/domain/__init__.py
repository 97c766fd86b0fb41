"""The domain: shortening messages, following links and recording interactions, free of HTTP."""
