"""`GET`/`HEAD /{code}`, the recipients' tap, as a bare ASGI endpoint."""

from __future__ import annotations

import logging
import time

from starlette.types import Receive, Scope, Send

from shortener.domain.paths import SHORT_LINK
from shortener.domain.redirects import TapOutcome
from shortener.http import errors, requests
from shortener.http.observability import log_unexpected, record_request, request_id_of
from shortener.http.pages import DISABLED_PAGE, EXPIRED_PAGE, NOT_FOUND_PAGE
from shortener.http.problems import HTTPProblem
from shortener.http.responses import RawHeaders, error_parts, header
from shortener.model import StoreUnavailable
from shortener.runtime import Runtime

log = logging.getLogger("shortener")
_REDIRECT_HEADERS = [(b"cache-control", b"no-store")]


class TapEndpoint:
    """Taps are most of the traffic and each must land fast, so `ShortenerApp` hands them here
    before routing and middleware; this does the little they need itself: one store call
    (two for a tracked link), prebuilt headers, one metrics update and one log line. The path
    may go on past the code (see `CodeCodec.decode_leading`).
    """

    ROUTE = SHORT_LINK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_of(scope)
        status: int = 500
        headers: RawHeaders = []
        body = b""
        try:
            status, headers, body = await self._answer(scope)
        except StoreUnavailable as error:
            log.warning("store unavailable: %s", error)
            status, headers, body = _problem_parts(scope, errors.STORE_UNAVAILABLE())
        except HTTPProblem as problem:
            status, headers, body = _problem_parts(scope, problem)
        except Exception:
            log_unexpected(scope["method"], self.ROUTE, request_id)
            status, headers, body = _problem_parts(scope, errors.UNEXPECTED())
        finally:
            headers.append((b"x-request-id", request_id.encode()))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            elapsed = time.perf_counter() - started
            record_request(self.ROUTE, scope["method"], status, elapsed, request_id)

    async def _answer(self, scope: Scope) -> tuple[int, RawHeaders, bytes]:
        runtime: Runtime = scope["app"].state.runtime
        gate: requests.Gate = scope["app"].state.gate
        redirects = (await runtime.services()).redirects
        client = gate.clients.of(scope)
        owner = requests.owner(scope, redirects)
        code = redirects.find_code(scope["path"][1:])
        if code is not None:
            visitor = requests.visitor(scope["method"], header(scope, b"user-agent"))
            result = await redirects.tap(code, visitor, owner)
        elif gate.throttle.blocked(client):
            raise errors.TOO_MANY_MISSES()
        else:
            # Answered without the store, and without classifying the agent either.
            result = redirects.unknown(owner)
        if result.outcome is TapOutcome.REDIRECT and result.link is not None:
            return _redirect_parts(result.link.target)
        gate.throttle.miss(client)
        if result.fallback_url is not None:
            return _redirect_parts(result.fallback_url)
        if result.outcome is TapOutcome.DISABLED:
            return _problem_parts(scope, errors.LINK_DISABLED(), page=DISABLED_PAGE)
        if result.outcome is TapOutcome.EXPIRED:
            return _problem_parts(scope, errors.CODE_EXPIRED(), page=EXPIRED_PAGE)
        return _problem_parts(scope, errors.CODE_UNKNOWN(), page=NOT_FOUND_PAGE)


def _redirect_parts(location: str) -> tuple[int, RawHeaders, bytes]:
    return 302, [(b"location", location.encode()), *_REDIRECT_HEADERS], b""


def _problem_parts(
    scope: Scope, problem: HTTPProblem, *, page: bytes | None = None
) -> tuple[int, RawHeaders, bytes]:
    return error_parts(scope, problem.status, problem.detail, problem.headers, page=page)


tap = TapEndpoint()
