"""Routes matched on the path as it was sent, so that an encoded '/' (`%2F`) stays inside its
path parameter; each parameter is then percent-decoded once (`%252F` names `%2F`)."""

from __future__ import annotations

from urllib.parse import quote, unquote_to_bytes

from starlette.routing import Match, Route
from starlette.types import Scope

from shortener.http import errors


def raw_path(scope: Scope) -> str:
    """The path as the client sent it, still percent-encoded, without the root path."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        # The server kept only the decoded path: encoded again, it decodes to itself.
        return quote(scope["path"], safe="/")
    path = raw.decode("latin-1")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _segment(raw: str) -> str:
    """One path segment, percent-decoded once."""
    if raw.isascii() and "%" not in raw:
        return raw
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.PATH_SEGMENT() from None


class SegmentRoute(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        match = self.path_regex.match(raw_path(scope))
        if match is None:
            return Match.NONE, {}
        path_params = dict(scope.get("path_params", {}))
        for name, raw in match.groupdict().items():
            path_params[name] = self.param_convertors[name].convert(_segment(raw))
        child_scope = {"endpoint": self.endpoint, "path_params": path_params}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope
