"""The dashboard: server-rendered pages for marketers and operators, signed in by key."""
