"""The HTTP layer: the app, its endpoints, and what they answer with."""
