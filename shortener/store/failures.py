"""Which errors of redis-py mean the store is out of reach, and what a log may say of them."""

from __future__ import annotations

import os

from redis.exceptions import (
    AskError,
    ClusterDownError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from shortener.metrics import REDIS_ERRORS
from shortener.model import StoreUnavailable

# A cluster that has lost a master refuses commands until a replica takes over (CLUSTERDOWN,
# MASTERDOWN, TRYAGAIN), and one whose slots move redirects them (MOVED, ASK) where the client
# may not follow: error replies, but about the store, not the command. redis-py's cluster
# client raises RedisClusterException, no RedisError, when it finds no node to ask.
_TRANSIENT_REPLIES = (ClusterDownError, TryAgainError, AskError)
FAILURES = (TimeoutError, ConnectionError, OSError, RedisError, RedisClusterException)


def unavailable(error: BaseException) -> bool:
    if isinstance(error, ResponseError):
        return isinstance(error, _TRANSIENT_REPLIES)
    return isinstance(error, FAILURES)


def unavailable_error(error: BaseException) -> StoreUnavailable:
    REDIS_ERRORS.inc()
    return StoreUnavailable(failure_summary(error))


def failure_summary(error: BaseException) -> str:
    """What went wrong reaching the store, fit for a log line: the kind of error, and the
    system's reason where a socket failed (`ConnectionError: Connection refused`).

    Never the error's own text: redis-py writes the failed command into some of its messages,
    keys and arguments included (contact ids, targets), e.g. a pipeline's errors as
    `Command # 1 (EVALSHA …) of pipeline caused error: …`."""
    summary = type(error).__name__
    cause: BaseException | None = error
    # A few links down the chain at most: the socket's error is near, and a chain may loop.
    for _ in range(8):
        if cause is None:
            break
        if isinstance(cause, OSError) and isinstance(cause.errno, int):
            return f"{summary}: {os.strerror(cause.errno)}"
        cause = cause.__cause__ or cause.__context__
    return summary
