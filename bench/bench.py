"""Benchmark: the service's taps and shortening against minimal reference apps, `make bench`.

One run against one local `redis-server` (TCP on 127.0.0.1, no persistence):

1. the reference apps of `bench/reference_apps.py` (a fixed 302; one awaited GET; GET and
   XADD; auto-pipelined GETs), each its own uvicorn process, under the same wrk load as
   the service's taps;
2. `shortener serve` with one worker: taps on untracked and on tracked codes, single
   shorten calls (wrk), and batch shortening from four concurrent clients; then, once its
   org has a branded domain, untracked taps on that domain and on the default one in
   interleaved rounds; tracked taps with and without a webhook endpoint (a local receiver
   answering 204), interleaved, and how long the receiver waits for the last event;
3. Redis memory per stored code and per interaction, on a flushed Redis;
4. with `--workers-check`, the untracked taps again with two workers.

Every run also checks its answers: each tap must be a 302 to its code's URL (wrk's script
checks every answer against the requests in flight, and a sample of the paths is asked again
one at a time), a sample of the shorten answers must hold the message's links, redirecting to
their URLs, and the interactions stream must grow by one entry per tracked tap answered and
not at all for untracked ones.

It prints a markdown report, writes it to `bench/results.md` and compares the figures with
the service's goals (`goals`). Missing a goal is a result, not a failure: the exit status is
non-zero only when something broke (a server did not start, wrk is missing, a run had
errors or wrong answers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cpu
import harness
import httpx
import redis
from harness import (
    START_SECONDS,
    HarnessError,
    Server,
    Service,
    free_port,
    http_server,
    issue_codes,
    redis_server,
    tail,
    wrong_redirects,
)
from reference_apps import FIXED_TARGET
from reference_apps import STREAM_KEY as REFERENCE_STREAM

from shortener.domain.settling import is_settled
from shortener.store.analytics import WEEK_DAYS
from shortener.store.embedded import server_binary
from shortener.store.keys import (
    BOT_CLICKS_METRIC,
    CLICKS_METRIC,
    LINKS_METRIC,
    OPENS_METRIC,
    SETTLER_KEY,
    analytics_days_key,
    analytics_hours_key,
    analytics_weeks_key,
    campaign_field,
    hour_field,
    settled_key,
)
from tests.support.service import ADMIN_KEY

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_FILE = BENCH_DIR / "results.md"
TAPS_SCRIPT = BENCH_DIR / "bench_taps.lua"
SHORTEN_SCRIPT = BENCH_DIR / "bench_shorten.lua"
REFERENCE_APPS = BENCH_DIR / "reference_apps.py"

ORG = "bench"
STREAM = f"{{o:{ORG}}}:ix"
CODES = 20_000
SEED_BATCH = 1000
URL_LENGTH = 60
WRK_THREADS = 2
WARMUP_SECONDS = 2
BATCH_CLIENTS = 4
BATCH_MESSAGES = 1000
LINKS_PER_BATCH_MESSAGE = 2
TAP_CLIENT_CONNECTIONS = 32
BUFFER_RELEASE_SECONDS = 3.0
# Paths of a tap run asked again one at a time, links of shorten answers followed, per run.
REPLAY_SAMPLE = 50
# Taps still being answered when wrk stops record their clicks a moment later.
SETTLE_SECONDS = 10.0
SETTLE_POLL_SECONDS = 0.25
# wrk stops on time by itself; this only bounds a wrk that hangs.
WRK_GRACE_SECONDS = 30.0
MIB = 1024 * 1024
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)

REFERENCE_RUNS = {
    "fixed": "reference: fixed 302, no I/O",
    "get": "reference: one awaited GET",
    "get-xadd": "reference: GET + XADD",
    "pipelined": "reference: auto-pipelined GET",
}
UNTRACKED = "service: untracked tap"
TRACKED = "service: tracked tap"
SHORTEN = "service: single shorten (2 links)"
BATCH = (
    f"service: batch shortening ({BATCH_CLIENTS} clients, batches of {BATCH_MESSAGES} messages"
    f" with {LINKS_PER_BATCH_MESSAGE} links)"
)
# A service of one worker and one of two, side by side, in interleaved rounds: on two CPUs
# that wrk and Redis share, a second worker cannot double the rate; what must hold is that a
# tap costs no more CPU with two.
UNTRACKED_1W = "service: untracked tap, 1 worker (beside 2 workers)"
UNTRACKED_2W = "service: untracked tap, 2 workers"
WORKER_ROUNDS = 3
# The same taps on an org's own domain and on the default one, in interleaved rounds: the
# figures are their medians, so that a noisy moment of the machine skews neither alone.
BRANDED_DOMAIN = "go.bench.example"
BRANDED = "service: untracked tap, branded domain"
DEFAULT_DOMAIN = "service: untracked tap, default domain"
DOMAIN_ROUNDS = 3
# Tracked taps with no webhook endpoint and with one (a local receiver answering 204), in
# interleaved rounds; each round with an endpoint waits until the receiver has every event.
WEBHOOK_OFF = "service: tracked tap, no webhook"
WEBHOOK_ON = "service: tracked tap, webhook delivering"
DELIVERY = "webhook delivery"
DELIVERY_ROUNDS = 2
DRAIN_LIMIT_SECONDS = 300
# "Within a few seconds of the run's end."
DRAIN_GOAL_SECONDS = 5
# Tracked taps while the service settles their interactions (within a second here, so during
# the run) and while the bench holds the settler's lease, so that nothing settles; interleaved.
SETTLING_ON = "service: tracked tap, settling"
SETTLING_OFF = "service: tracked tap, settling held off"
SETTLING_ROUNDS = 3
SETTLE_CATCH_UP_SECONDS = 120
# Every run of the service and the references, in this order each round.
TAP_ROUNDS = 3
# The parts of a run, which `--only` picks from.
PARTS = ("taps", "settling", "batch", "delivery", "analytics", "domains", "workers", "memory")
# Analytics queries over a month of aggregate counts of this many campaigns, each active a few
# hours a day, asked one at a time; the goal is "well under 100 ms" for the campaign list.
ANALYTICS_CAMPAIGNS = 1000
ANALYTICS_DAYS = 30
ANALYTICS_HOURS_ACTIVE = 3
ANALYTICS_QUERIES = 50
ANALYTICS_GOAL_MS = 50
CAMPAIGN_LIST = f"analytics: {ANALYTICS_DAYS}-day campaign list, {ANALYTICS_CAMPAIGNS:,} campaigns"
DAILY_SERIES = f"analytics: {ANALYTICS_DAYS}-day series by day"
CAMPAIGN_SERIES = f"analytics: {ANALYTICS_DAYS}-day series by day, one campaign"


class BenchError(HarnessError):
    """Something the benchmark needs did not work; the message says what."""


def target_url(n: int) -> str:
    url = f"https://shop.example.com/orders/{n:08d}?utm_source=sms&cp=1"
    assert len(url) == URL_LENGTH, url
    return url


def returns_url(n: int) -> str:
    url = f"https://shop.example.com/returns/{n:07d}?utm_source=sms&cp=1"
    assert len(url) == URL_LENGTH, url
    return url


# The single shorten call's message and the links the service must find in it.
SHORTEN_LINKS = (target_url(4711), returns_url(4711))
SHORTEN_MESSAGE = {"body": f"Order 4711 shipped: {SHORTEN_LINKS[0]} Returns: {SHORTEN_LINKS[1]}"}


# Servers


def running_service(
    redis_url: str, directory: Path, workers: int = 1
) -> contextlib.AbstractContextManager[Service]:
    name = f"the service ({workers} worker{'s' if workers > 1 else ''})"
    # The webhook receiver is on loopback.
    settings = {"webhook_allow_private": "1"}
    return harness.running_service(
        redis_url, directory, ORG, workers=workers, name=name, settings=settings
    )


@contextlib.contextmanager
def reference_app(app: str, redis_url: str, directory: Path) -> Iterator[Server]:
    port = free_port()
    args = [sys.executable, str(REFERENCE_APPS), app, "--port", str(port)]
    args += ["--redis-url", redis_url]
    with http_server(f"reference app {app}", args, directory / f"ref-{app}.log", "/x") as server:
        yield server


# wrk


@dataclass
class RunResult:
    name: str
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    unit: str = "req/s"
    note: str = ""
    # What the client made of the answers (for wrk, its script: see bench_report.lua).
    sent: int = 0
    answered: int = 0
    redirected: int = 0
    wrong: int = 0
    wrong_examples: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    # CPU per request of the app's processes and of redis-server, where measured.
    cost: cpu.CpuPerRequest | None = None
    # The lowest and highest rate of the rounds this result is the median of.
    spread: tuple[float, float] | None = None

    @property
    def in_flight(self) -> int:
        """Requests sent whose answers the client stopped waiting for at the end."""
        return self.sent - self.answered


def run_wrk(
    name: str,
    script: Path,
    url: str,
    script_args: Sequence[str],
    seconds: int,
    connections: int,
    directory: Path,
) -> RunResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed; `make bench` installs it as root")
    command = [wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script), url, "--", *script_args]
    try:
        done = subprocess.run(
            command,
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=seconds + WRK_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{name}: wrk did not finish within {error.timeout:.0f} s") from None
    figures: dict[str, float] = {}
    lines: dict[str, list[str]] = {"wrong": [], "sample": []}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "bench":
            figures[parts[1]] = float(parts[2])
        kind, _, text = line.partition(" ")
        if kind in lines:
            lines[kind].append(text)
    if done.returncode != 0 or "requests" not in figures or "wrong" not in figures:
        raise BenchError(
            f"{name}: wrk failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr}"
        )
    kinds = ("status", "connect", "read", "write", "timeout")
    by_kind = {kind: int(figures[f"errors_{kind}"]) for kind in kinds}
    note = ", ".join(
        f"{n} {'non-2xx/3xx' if k == 'status' else k}" for k, n in by_kind.items() if n
    )
    return RunResult(
        name,
        figures["requests"] / (figures["duration_us"] / 1e6),
        figures["latency_p50_us"] / 1000,
        figures["latency_p99_us"] / 1000,
        sum(by_kind.values()),
        note=note,
        sent=int(figures["sent"]),
        answered=int(figures["answered"]),
        redirected=int(figures["redirected"]),
        wrong=int(figures["wrong"]),
        wrong_examples=lines["wrong"],
        samples=lines["sample"],
    )


@dataclass
class Bench:
    seconds: int
    connections: int
    directory: Path
    # The Redis every app uses, for its CPU time and command statistics (set once it runs).
    redis: redis.Redis | None = None
    results: dict[str, RunResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # After the last tap of a run with a webhook endpoint, until its receiver had every event.
    drain_seconds: float | None = None

    def load(
        self,
        name: str,
        script: Path,
        url: str,
        script_args: Sequence[str],
        *,
        app: Server | None = None,
        stream: Stream | None = None,
        replay: Sequence[tuple[str, str]] = (),
    ) -> RunResult:
        """A warm-up, then the measured wrk run; a run with errors or wrong answers is also a
        problem. The CPU time of `app`'s processes and of Redis is read around the measured
        run. `stream` must grow by what the run's taps record; `replay` holds the (path,
        Location) pairs of which a sample is asked again, one at a time, after the run."""
        print(f"running {name}", file=sys.stderr)
        warmup = min(WARMUP_SECONDS, self.seconds)
        args = (script, url, script_args)
        run_wrk(f"{name} (warm-up)", *args, warmup, self.connections, self.directory)
        length = stream.settled_length() if stream else 0
        if self.redis is None:
            raise BenchError("no Redis to measure")
        group = app.process.pid if app else None
        before = cpu.read(self.redis, group)
        result = run_wrk(name, *args, self.seconds, self.connections, self.directory)
        after = cpu.read(self.redis, group)
        result.cost = cpu.per_request(before, after, result.answered, app is not None)
        self.record(result)
        print(f"  {result.answered:,} answers checked, {result.wrong:,} wrong", file=sys.stderr)
        if stream:
            self.check_stream(result, stream, stream.settled_length() - length)
        if replay:
            sample = random.sample(list(replay), min(REPLAY_SAMPLE, len(replay)))
            base = url.rstrip("/")
            self.check_redirects(name, [(base + path, location) for path, location in sample])
        return result

    def check_stream(self, result: RunResult, stream: Stream, grown: int) -> None:
        print(
            f"  {stream.key} grew by {grown:,} entries; {result.redirected:,} answers were 302s, "
            f"{result.in_flight} requests in flight at the end",
            file=sys.stderr,
        )
        if not stream.per_redirect:
            if grown:
                self.problems.append(
                    f"{result.name}: {stream.key} grew by {grown:,} entries; these taps record "
                    f"nothing"
                )
            return
        # A tap still in flight when wrk stopped may or may not have been recorded.
        if not result.redirected <= grown <= result.redirected + result.in_flight:
            self.problems.append(
                f"{result.name}: {stream.key} grew by {grown:,} entries for "
                f"{result.redirected:,} taps answered 302 (and {result.in_flight} in flight "
                f"when wrk stopped)"
            )

    def check_redirects(self, name: str, expected: Sequence[tuple[str, str]]) -> None:
        """Each URL asked again must be a 302 to its Location."""
        wrong = wrong_redirects(expected, PHONE)
        if wrong:
            self.problems.append(
                f"{name}: {len(wrong)} of {len(expected)} URLs asked again were not a 302 to "
                f"their Location, e.g. " + "; ".join(wrong[:3])
            )

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """One part of the run: if it breaks, that is reported and the other parts still run."""
        try:
            yield
        except HarnessError as error:
            self.problems.append(f"{name}: {error}")
        except (httpx.HTTPError, redis.RedisError, OSError, TimeoutError) as error:
            self.problems.append(f"{name}: {type(error).__name__}: {error}")

    def record(self, result: RunResult) -> RunResult:
        self.results[result.name] = result
        if result.errors:
            self.problems.append(f"{result.name}: {result.errors} errors ({result.note})")
        if result.wrong:
            self.problems.append(
                f"{result.name}: {result.wrong:,} of {result.answered:,} answers were wrong, "
                f"e.g. " + "; ".join(result.wrong_examples[:3])
            )
        return result


@dataclass
class Stream:
    """A Redis stream that a run's taps grow by one entry each 302 (`per_redirect`), or leave
    as it is."""

    client: redis.Redis
    key: str
    per_redirect: bool

    def settled_length(self) -> int:
        """XLEN once it stops changing: taps still being answered when wrk quit land late."""
        deadline = time.monotonic() + SETTLE_SECONDS
        length = int(self.client.xlen(self.key))
        while time.monotonic() < deadline:
            time.sleep(SETTLE_POLL_SECONDS)
            again = int(self.client.xlen(self.key))
            if again == length:
                break
            length = again
        return length


# The service's data


def seed(service: Service, count: int, tracked: bool, first: int) -> list[tuple[str, str]]:
    """Issue `count` codes of one kind, one link a message; returns (code, URL) pairs."""
    numbers = range(first, first + count)
    messages: list[dict[str, Any]] = []
    for n in numbers:
        message: dict[str, Any] = {
            "body": f"Your order {n} has shipped: {target_url(n)} Reply STOP to opt out"
        }
        if tracked:
            message["recipient"] = {"contact_id": f"c-{n}", "tracking_consent": True}
        messages.append(message)
    codes = issue_codes(service, messages, [tracked] * count, batch=SEED_BATCH, timeout=120)
    return [(code, target_url(n)) for n, code in zip(numbers, codes, strict=True)]


def tap_answers(codes: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(path, Location) of each code's tap."""
    return [(f"/{code}", url) for code, url in codes]


def write_paths(path: Path, answers: Sequence[tuple[str, str]]) -> Path:
    """The file of bench_taps.lua: the paths to tap and the Location each must answer."""
    path.write_text("".join(f"{tap} {location}\n" for tap, location in answers))
    return path


def write_shorten_message(directory: Path) -> Path:
    path = directory / "shorten.json"
    path.write_text(json.dumps(SHORTEN_MESSAGE))
    return path


def seed_reference_keys(client: redis.Redis, codes: Sequence[tuple[str, str]]) -> None:
    pipe = client.pipeline(transaction=False)
    for code, url in codes:
        pipe.set(f"ref:{code}", url)
    pipe.execute()


def service_statuses(service: Service) -> Counter[str]:
    """Requests the service answered so far, by status (all workers)."""
    text = httpx.get(f"{service.base_url}/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for match in re.finditer(
        r'^shortener_requests_total\{[^}]*status="(\d+)"[^}]*\} (\S+)$', text, re.MULTILINE
    ):
        counts[match.group(1)] += round(float(match.group(2)))
    return counts


def service_load(
    bench: Bench,
    service: Service,
    name: str,
    script: Path,
    script_args: Sequence[str],
    *,
    stream: Stream | None = None,
    replay: Sequence[tuple[str, str]] = (),
) -> RunResult:
    """A wrk run on the service; when it had errors, what the service answered instead."""
    before = service_statuses(service)
    result = bench.load(
        name,
        script,
        service.base_url + "/",
        script_args,
        app=service,
        stream=stream,
        replay=replay,
    )
    if result.errors:
        after = service_statuses(service)
        after.subtract(before)
        odd = {
            status: n for status, n in after.items() if n > 0 and not status.startswith(("2", "3"))
        }
        bench.problems.append(
            f"{name}: the service answered {odd or 'no error statuses'}; its log ends:\n"
            f"{tail(service.log, 5)}"
        )
    return result


def give_domain(service: Service, domain: str) -> None:
    """Make `domain` the bench org's own: its links are issued there from now on."""
    response = httpx.put(
        f"{service.base_url}/v1/admin/orgs/{ORG}",
        json={"domains": [domain]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    if response.status_code != 200:
        raise BenchError(f"setting the org's domain: {response.status_code} {response.text}")


def _middle(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def median_cost(rounds: Sequence[RunResult]) -> cpu.CpuPerRequest | None:
    """The median CPU per request of the rounds, per process and per command."""
    costs = [result.cost for result in rounds if result.cost is not None]
    if not costs:
        return None
    names = {name for cost in costs for name in cost.commands}
    return cpu.CpuPerRequest(
        _middle([cost.app_us for cost in costs]),
        statistics.median(cost.redis_us for cost in costs),
        {
            name: (
                statistics.median(cost.commands.get(name, (0.0, 0.0))[0] for cost in costs),
                statistics.median(cost.commands.get(name, (0.0, 0.0))[1] for cost in costs),
            )
            for name in names
        },
    )


def median_result(name: str, rounds: Sequence[RunResult]) -> RunResult:
    """One result of several rounds: the median of each figure, the lowest and highest rate,
    the sum of the errors."""
    rates = [result.rate for result in rounds]
    return RunResult(
        name,
        statistics.median(rates),
        _middle([result.p50_ms for result in rounds]),
        _middle([result.p99_ms for result in rounds]),
        sum(result.errors for result in rounds),
        unit=rounds[0].unit,
        note="; ".join(result.note for result in rounds if result.note),
        cost=median_cost(rounds),
        spread=(min(rates), max(rates)),
    )


Runner = Callable[[str], RunResult]


def interleaved(bench: Bench, runs: Sequence[tuple[str, Runner]], rounds: int) -> None:
    """Each run once a round, in the order given, for `rounds` rounds: a noisy moment of the
    machine then skews one round of each, not all of one. Each run's figures are the medians
    of its rounds."""
    found: dict[str, list[RunResult]] = {name: [] for name, _ in runs}
    for number in range(1, rounds + 1):
        for name, runner in runs:
            with bench.step(name):
                found[name].append(runner(f"{name}, round {number}"))
    for name, results in found.items():
        if not results:
            continue
        bench.results[name] = median_result(name, results)
        shown = ", ".join(f"{result.rate:,.0f}" for result in results)
        bench.notes.append(f"{name}: {shown} {results[0].unit} in rounds 1 to {len(results)}")


def domain_rounds(
    bench: Bench, service: Service, default_paths: str, stream: Stream, directory: Path
) -> None:
    """Untracked taps on codes of the org's branded domain (sent with that Host) and on
    codes of the default one, in DOMAIN_ROUNDS interleaved rounds."""
    give_domain(service, BRANDED_DOMAIN)
    codes = seed(service, CODES, False, 2 * CODES)
    paths = str(write_paths(directory / "branded.txt", tap_answers(codes)))

    def taps(*args: str) -> Runner:
        return lambda label: service_load(bench, service, label, TAPS_SCRIPT, args, stream=stream)

    interleaved(
        bench,
        [(BRANDED, taps(paths, BRANDED_DOMAIN)), (DEFAULT_DOMAIN, taps(default_paths))],
        DOMAIN_ROUNDS,
    )


def caught_up(client: redis.Redis) -> None:
    """Wait until the org's interactions have all settled."""
    deadline = time.monotonic() + SETTLE_CATCH_UP_SECONDS
    while True:
        last: list[Any] = client.xrevrange(STREAM, count=1)  # type: ignore[assignment]
        cursor: bytes | None = client.get(settled_key(ORG))  # type: ignore[assignment]
        if not last or (cursor is not None and is_settled(last[0][0].decode(), cursor.decode())):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"interactions did not settle within {SETTLE_CATCH_UP_SECONDS} s")
        time.sleep(SETTLE_POLL_SECONDS)


def settling_rounds(
    bench: Bench, service: Service, tracked_paths: str, clicks: Stream, client: redis.Redis
) -> None:
    """Tracked taps with settling held off (the bench holds the settler's lease, which the
    service then stops renewing) and on, interleaved; each starts with nothing left to
    settle."""

    def taps(label: str) -> RunResult:
        return service_load(bench, service, label, TAPS_SCRIPT, [tracked_paths], stream=clicks)

    def settling(label: str) -> RunResult:
        caught_up(client)
        return taps(label)

    def held_off(label: str) -> RunResult:
        caught_up(client)
        client.set(SETTLER_KEY, "the bench", px=(bench.seconds + 60) * 1000)
        try:
            return taps(label)
        finally:
            client.delete(SETTLER_KEY)

    interleaved(bench, [(SETTLING_OFF, held_off), (SETTLING_ON, settling)], SETTLING_ROUNDS)


def seed_analytics(client: redis.Redis, org: str, last_day: int) -> None:
    """A month of aggregate counts as the service writes them: every campaign active a few
    hours a day, with clicks, opens and bot clicks, and the org's own hourly totals."""
    rng = random.Random(7)
    metrics = (CLICKS_METRIC, OPENS_METRIC, BOT_CLICKS_METRIC)
    pipe = client.pipeline(transaction=False)
    for day in range(last_day - ANALYTICS_DAYS - WEEK_DAYS, last_day + 1):
        hours: dict[Any, int] = {}
        days: dict[Any, int] = {}
        for number in range(ANALYTICS_CAMPAIGNS):
            campaign = f"campaign-{number:04d}-spring-sale"
            days[campaign_field(LINKS_METRIC, campaign)] = rng.randint(100, 5000)
            for hour in rng.sample(range(24), ANALYTICS_HOURS_ACTIVE):
                for metric in metrics:
                    count = rng.randint(1, 50)
                    hours[hour_field(hour, metric, campaign)] = count
                    hours[hour_field(hour, metric)] = hours.get(hour_field(hour, metric), 0) + count
                    field = campaign_field(metric, campaign)
                    days[field] = days.get(field, 0) + count
        pipe.hset(analytics_hours_key(org, day), mapping=hours)
        pipe.hset(analytics_days_key(org, day), mapping=days)
        for field, count in days.items():
            pipe.hincrby(analytics_weeks_key(org, day // WEEK_DAYS), field, count)
        pipe.execute()


def timed_queries(
    name: str, url: str, params: dict[str, str], headers: dict[str, str]
) -> RunResult:
    """ANALYTICS_QUERIES answers to one query, one at a time, after a few to warm up."""
    took: list[float] = []
    with httpx.Client(headers=headers, timeout=30) as http:
        for number in range(ANALYTICS_QUERIES + 3):
            started = time.perf_counter()
            answer = http.get(url, params=params)
            if answer.status_code != 200:
                raise BenchError(f"{name}: {answer.status_code} {answer.text[:200]}")
            if number >= 3:
                took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return RunResult(
        name,
        len(took) / (sum(took) / 1000),
        statistics.median(took),
        took[max(0, int(len(took) * 0.99) - 1)],
        0,
    )


def analytics_queries(bench: Bench, service: Service, client: redis.Redis) -> None:
    """The analytics API over a month of a thousand campaigns."""
    print("running analytics queries", file=sys.stderr)
    today = int(time.time()) // 86_400
    seed_analytics(client, ORG, today)
    headers = {"Authorization": f"Bearer {service.api_key}"}
    end = datetime.fromtimestamp((today + 1) * 86_400, UTC)
    span = {"from": (end - timedelta(days=ANALYTICS_DAYS)).isoformat(), "to": end.isoformat()}
    base = f"{service.base_url}/v1/analytics"
    listed = timed_queries(CAMPAIGN_LIST, f"{base}/campaigns", span, headers)
    bench.record(listed)
    daily = {**span, "interval": "day"}
    bench.record(timed_queries(DAILY_SERIES, base, daily, headers))
    one = {**daily, "campaign": "campaign-0500-spring-sale"}
    bench.record(timed_queries(CAMPAIGN_SERIES, base, one, headers))
    answer = httpx.get(f"{base}/campaigns", params=span, headers=headers, timeout=30).json()
    if len(answer["campaigns"]) != ANALYTICS_CAMPAIGNS:
        raise BenchError(f"the campaign list holds {len(answer['campaigns'])} campaigns")


def received_events(receiver: Server) -> int:
    answer = httpx.get(f"{receiver.base_url}/count", timeout=10)
    count: int = answer.json()["events"]
    return count


def set_webhook(service: Service, url: str | None) -> None:
    """Give the org one endpoint at `url`, or none."""
    headers = {"Authorization": f"Bearer {service.api_key}"}
    path = f"{service.base_url}/v1/webhooks/bench"
    if url is None:
        answer = httpx.delete(path, headers=headers, timeout=10)
    else:
        answer = httpx.put(path, json={"url": url}, headers=headers, timeout=10)
    if answer.status_code not in (200, 204):
        raise BenchError(f"webhook endpoint: {answer.status_code} {answer.text}")
    # Every worker reads its endpoints once a second.
    time.sleep(1.5)


def delivery_rounds(
    bench: Bench,
    service: Service,
    tracked_paths: str,
    clicks: Stream,
    receiver: Server,
) -> None:
    """Tracked taps without and with a webhook endpoint, interleaved; with one, the time from
    the end of the taps until the receiver has every event they recorded."""
    runs: dict[str, list[RunResult]] = {WEBHOOK_OFF: [], WEBHOOK_ON: []}
    rates: list[float] = []
    drains: list[float] = []
    for number in range(1, DELIVERY_ROUNDS + 1):
        label = f"{WEBHOOK_OFF}, round {number}"
        runs[WEBHOOK_OFF].append(
            service_load(bench, service, label, TAPS_SCRIPT, [tracked_paths], stream=clicks)
        )
        set_webhook(service, f"{receiver.base_url}/hook")
        before, length = received_events(receiver), clicks.settled_length()
        label = f"{WEBHOOK_ON}, round {number}"
        run = service_load(bench, service, label, TAPS_SCRIPT, [tracked_paths], stream=clicks)
        runs[WEBHOOK_ON].append(run)
        ended = time.monotonic()
        recorded = clicks.settled_length() - length
        while received_events(receiver) - before < recorded:
            if time.monotonic() - ended > DRAIN_LIMIT_SECONDS:
                got = received_events(receiver) - before
                raise BenchError(
                    f"the receiver got {got:,} of {recorded:,} events within "
                    f"{DRAIN_LIMIT_SECONDS} s of the run's end"
                )
            time.sleep(0.1)
        drain = time.monotonic() - ended
        drains.append(drain)
        rates.append(recorded / (bench.seconds + drain))
        bench.notes.append(
            f"{DELIVERY}, round {number}: {recorded:,} events, every one received "
            f"{drain:.1f} s after the taps ended"
        )
        set_webhook(service, None)
    for name, rounds in runs.items():
        bench.results[name] = median_result(name, rounds)
    bench.results[DELIVERY] = RunResult(
        DELIVERY, statistics.median(rates), None, None, 0, unit="events/s"
    )
    bench.drain_seconds = statistics.median(drains)


def scan_service_logs(bench: Bench) -> None:
    """Lines the services logged above info level: errors are problems, the rest notes."""
    for log in sorted(bench.directory.glob("service-*.log")):
        levels: Counter[str] = Counter()
        examples: dict[str, str] = {}
        with open(log, errors="replace") as lines:
            for line in lines:
                if '"level": "info"' in line:
                    continue
                try:
                    level = str(json.loads(line).get("level", "unknown"))
                except (ValueError, AttributeError):
                    level = "unstructured"
                levels[level] += 1
                examples.setdefault(level, line.strip()[:300])
        for level, count in levels.items():
            finding = f"{log.name}: {count} {level} line(s), the first: `{examples[level]}`"
            if level in ("warning", "unstructured"):
                bench.notes.append(finding)
            else:
                bench.problems.append(finding)


def check_shortened(
    bench: Bench, result: RunResult, wanted: Sequence[Sequence[tuple[str, ...]]]
) -> None:
    """Each answer the run kept must hold, for each message sent, the links `wanted` lists for
    it (in the order of the answers), and a sample of their short links must redirect there."""
    problems: list[str] = []
    links: list[tuple[str, str]] = []
    for text, messages in zip(result.samples, wanted, strict=True):
        try:
            answer = json.loads(text)
            results = answer.get("results", [answer])
            if len(results) != len(messages):
                problems.append(f"{len(results)} results for {len(messages)} messages")
                continue
            for message_result, urls in zip(results, messages, strict=True):
                found = [(link["short_url"], link["url"]) for link in message_result["links"]]
                if [url for _, url in found] != list(urls) or not all(short for short, _ in found):
                    problems.append(f"links {found}, not to {list(urls)}")
                    break
                links += found
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{type(error).__name__} {error} in {text[:300]}")
    if not result.samples:
        problems.append("no answer was kept to check")
    if problems:
        bench.problems.append(
            f"{result.name}: {len(problems)} of {len(result.samples)} answers checked were "
            f"wrong, e.g. " + "; ".join(problems[:3])
        )
    if links:
        bench.check_redirects(result.name, random.sample(links, min(REPLAY_SAMPLE, len(links))))


def batch_numbers(client_number: int) -> range:
    first = client_number * BATCH_MESSAGES
    return range(first, first + BATCH_MESSAGES)


def batch_links(n: int) -> tuple[str, str]:
    return target_url(n), target_url(n + 5_000_000)


def batch_body(client_number: int) -> bytes:
    messages = [
        {"body": "Order {} shipped: {} Returns: {}".format(n, *batch_links(n))}
        for n in batch_numbers(client_number)
    ]
    return json.dumps({"messages": messages}).encode()


async def shorten_batches(service: Service, seconds: int) -> RunResult:
    """Concurrent clients posting the same batch again and again; without a message_id every
    post issues new codes. Each client's last answer is kept, for `check_shortened`."""
    headers = {
        "Authorization": f"Bearer {service.api_key}",
        "Content-Type": "application/json",
    }
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    window: list[float] = []
    links = 0
    kept: list[httpx.Response | None] = [None] * BATCH_CLIENTS
    # Every client has had its warm-up answer before any of them starts the clock.
    warmed_up = asyncio.Barrier(BATCH_CLIENTS)

    async def client(number: int) -> None:
        nonlocal links
        body = batch_body(number)
        async with httpx.AsyncClient(
            base_url=service.base_url, headers=headers, timeout=60
        ) as http:
            # The uncounted first post is the one whose answer is checked in full.
            first = await http.post("/v1/messages/batch", content=body)
            if first.status_code != 200:
                raise BenchError(f"batch shortening: {first.status_code} {first.text[:500]}")
            issued = sum(len(result["links"]) for result in first.json()["results"])
            if issued != BATCH_MESSAGES * LINKS_PER_BATCH_MESSAGE:
                raise BenchError(f"batch shortening: {issued} links in a batch of {body[:80]!r}")
            kept[number] = first
            await warmed_up.wait()
            started = time.monotonic()
            window.append(started)
            while time.monotonic() < started + seconds:
                sent = time.monotonic()
                response = await http.post("/v1/messages/batch", content=body)
                latencies.append(time.monotonic() - sent)
                if response.status_code == 200:
                    links += issued
                    kept[number] = response
                else:
                    failures[str(response.status_code)] += 1
            window.append(time.monotonic())

    async with asyncio.timeout(seconds + START_SECONDS + WRK_GRACE_SECONDS):
        await asyncio.gather(*(client(n) for n in range(BATCH_CLIENTS)))
    latencies.sort()
    p50, p99 = (percentile(latencies, q) * 1000 if latencies else None for q in (0.5, 0.99))
    return RunResult(
        BATCH,
        links / (max(window) - min(window)),
        p50,
        p99,
        sum(failures.values()),
        unit="links/s",
        note=", ".join(f"{n} x {status}" for status, n in failures.items()),
        sent=len(latencies),
        answered=len(latencies),
        samples=[response.text if response else "" for response in kept],
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# Memory


@dataclass
class Memory:
    untracked: float | None = None
    tracked: float | None = None
    interaction: float | None = None
    rss: int | None = None


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_LOCATION = re.compile(rb"\r\nlocation: *([^\r]*)", re.IGNORECASE)


async def tap_each(base_url: str, answers: Sequence[tuple[str, str]]) -> list[str]:
    """GET every path of the (path, Location) pairs exactly once over keep-alive connections;
    the answers that were not a 302 to the path's Location.

    A plain HTTP/1.1 exchange is enough for 302s, and several times faster than a full
    client, so tapping tens of thousands of codes takes seconds.
    """
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    wrong: list[str] = []
    pending = iter(answers)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for path, wanted in pending:
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"User-Agent: {PHONE}\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                if length is None:
                    raise BenchError(f"an answer without Content-Length: {head[:200]!r}")
                await reader.readexactly(int(length.group(1)))
                status = int(head.split(b" ", 2)[1])
                location = _LOCATION.search(head)
                found = location.group(1).decode("latin-1") if location else None
                if status != 302 or found != wanted:
                    answer = f"{status} to {found}" if found else status
                    wrong.append(f"{path}: {answer}, not 302 to {wanted}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async with asyncio.timeout(START_SECONDS + len(answers) / 100):
        await asyncio.gather(*(connection() for _ in range(TAP_CLIENT_CONNECTIONS)))
    return wrong


def tap_each_or_fail(what: str, base_url: str, codes: Sequence[tuple[str, str]]) -> None:
    wrong = asyncio.run(tap_each(base_url, tap_answers(codes)))
    if wrong:
        raise BenchError(
            f"tapping {what}: {len(wrong)} of {len(codes)} answers were wrong, e.g. "
            + "; ".join(wrong[:3])
        )


def settled_used_memory(client: redis.Redis) -> int:
    """used_memory once the connections that just carried traffic have been idle a while.

    Redis keeps a connection's grown query buffer until it has been idle for 2 s (a cron
    visits every connection about once a second); a burst of requests over a few dozen
    connections leaves about a MiB counted that goes away by itself, enough to swamp a
    per-code figure.
    """
    time.sleep(BUFFER_RELEASE_SECONDS)
    last = int(client.info("memory")["used_memory"])
    for _ in range(10):
        time.sleep(0.5)
        now = int(client.info("memory")["used_memory"])
        if now == last:
            break
        last = now
    return last


def measure_memory(client: redis.Redis, redis_url: str, directory: Path, memory: Memory) -> None:
    client.flushall()
    with running_service(redis_url, directory) as fresh:
        print("measuring memory per code and per interaction", file=sys.stderr)
        # Codes and taps first that are not measured: they load the scripts, create the
        # stream and the index of expiring codes, and open the service's pool of connections
        # as wide as the measured taps will.
        warm = seed(fresh, SEED_BATCH, False, 900_000) + seed(fresh, SEED_BATCH, True, 910_000)
        tap_each_or_fail("each code of the warm-up once", fresh.base_url, warm)

        before = settled_used_memory(client)
        seed(fresh, CODES, False, 1_000_000)
        after = settled_used_memory(client)
        memory.untracked = (after - before) / CODES

        before = after
        tracked = seed(fresh, CODES, True, 2_000_000)
        after = settled_used_memory(client)
        memory.tracked = (after - before) / CODES

        before, length = after, int(client.xlen(STREAM))
        tap_each_or_fail("each tracked code once", fresh.base_url, tracked)
        recorded = int(client.xlen(STREAM)) - length
        if recorded != CODES:
            raise BenchError(f"{CODES} tracked taps recorded {recorded} interactions")
        memory.interaction = (settled_used_memory(client) - before) / recorded


def vm_rss(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


# The report


def _output(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text()
    total = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    memory = f"{int(total.group(1)) / MIB:.1f} GiB" if total else "unknown"
    cpus = len(os.sched_getaffinity(0))
    return (
        f"{cpus} CPUs (nproc), {model.group(1).strip() if model else 'unknown CPU'}, "
        f"{memory} memory, {platform.system()} {platform.release()}; "
        # Other work on the machine skews every figure; the load says whether there was any.
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )


def versions() -> str:
    server = _output(server_binary(), "--version")
    redis_version = re.search(r"v=(\S+)", server)
    malloc = re.search(r"malloc=(\S+)", server)
    wrk_words = _output("wrk", "-v").split()
    found = [
        f"Python {platform.python_version()}",
        f"redis-server {redis_version.group(1) if redis_version else '?'}"
        f" (malloc={malloc.group(1) if malloc else '?'})",
    ]
    for package, label in (
        ("redis", "redis-py"),
        ("hiredis", "hiredis"),
        ("starlette", "starlette"),
        ("uvicorn", "uvicorn"),
        ("uvloop", "uvloop"),
        ("httptools", "httptools"),
        ("httpx", "httpx"),
    ):
        try:
            found.append(f"{label} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{label} (not installed)")
    found.append(f"wrk {wrk_words[1] if len(wrk_words) > 1 else '?'}")
    return ", ".join(found)


@dataclass
class Goal:
    what: str
    measured: str
    target: str
    met: bool | None


def _ratio(bench: Bench, name: str, reference: str) -> float | None:
    a, b = bench.results.get(name), bench.results.get(reference)
    return a.rate / b.rate if a and b and b.rate else None


def _redis_ratio(bench: Bench, name: str, reference: str) -> float | None:
    a, b = bench.results.get(name), bench.results.get(reference)
    if a is None or b is None or a.cost is None or b.cost is None or not b.cost.redis_us:
        return None
    return a.cost.redis_us / b.cost.redis_us


def _app_ratio(bench: Bench, name: str, reference: str) -> float | None:
    a, b = bench.results.get(name), bench.results.get(reference)
    if a is None or b is None or a.cost is None or b.cost is None:
        return None
    if a.cost.app_us is None or not b.cost.app_us:
        return None
    return a.cost.app_us / b.cost.app_us


def _at_most_times(what: str, value: float | None, target: float) -> Goal:
    if value is None:
        return Goal(what, "not run", f"≤ {target:g}x", None)
    return Goal(what, f"{value:.2f}x", f"≤ {target:g}x", value <= target)


def _at_least(what: str, value: float | None, target: float, unit: str = "x") -> Goal:
    if value is None:
        return Goal(what, "not run", f"≥ {target:,g}{unit}", None)
    shown = f"{value:.2f}x" if unit == "x" else f"{value:,.0f}{unit}"
    return Goal(what, shown, f"≥ {target:,g}{unit}", value >= target)


def _at_most_seconds(what: str, value: float | None, target: float) -> Goal:
    if value is None:
        return Goal(what, "not run", f"≤ {target:g} s", None)
    return Goal(what, f"{value:.1f} s", f"≤ {target:g} s", value <= target)


def _at_most_ms(what: str, value: float | None, target: float) -> Goal:
    if value is None:
        return Goal(what, "not run", f"≤ {target:g} ms", None)
    return Goal(what, f"{value:.1f} ms", f"≤ {target:g} ms", value <= target)


def _at_most_bytes(what: str, value: float | None, target: float) -> Goal:
    if value is None:
        return Goal(what, "not run", f"≤ {target:g} B", None)
    return Goal(what, f"{value:.0f} B", f"≤ {target:g} B", value <= target)


def goals(bench: Bench, memory: Memory) -> list[Goal]:
    plain, pipelined = REFERENCE_RUNS["get"], REFERENCE_RUNS["pipelined"]
    untracked, plain_run = bench.results.get(UNTRACKED), bench.results.get(plain)
    if untracked and plain_run and untracked.p99_ms is not None and plain_run.p99_ms is not None:
        p99 = Goal(
            "untracked tap p99 vs one-GET app p99",
            f"{untracked.p99_ms:.2f} ms",
            f"≤ {plain_run.p99_ms:.2f} ms",
            untracked.p99_ms <= plain_run.p99_ms,
        )
    else:
        p99 = Goal("untracked tap p99 vs one-GET app p99", "not run", "≤ one-GET app", None)
    batch = bench.results.get(BATCH)
    return [
        _at_least("untracked tap vs one-GET app", _ratio(bench, UNTRACKED, plain), 1.6),
        _at_least("untracked tap vs auto-pipelined app", _ratio(bench, UNTRACKED, pipelined), 0.9),
        p99,
        _at_least(
            "tracked tap vs GET + XADD app", _ratio(bench, TRACKED, REFERENCE_RUNS["get-xadd"]), 1.5
        ),
        _at_least("batch shortening", batch.rate if batch else None, 25_000, " links/s"),
        _at_least("single shorten vs one-GET app", _ratio(bench, SHORTEN, plain), 0.8),
        # Against the GET that reaches Redis in pipelines, as the service's commands do: a GET
        # sent alone costs Redis twice as much in system calls, and would flatter the service.
        _at_most_times(
            "Redis CPU per untracked tap vs per pipelined GET",
            _redis_ratio(bench, UNTRACKED, pipelined),
            3,
        ),
        _at_most_times(
            "Redis CPU per tracked tap vs per pipelined GET",
            _redis_ratio(bench, TRACKED, pipelined),
            6,
        ),
        _at_most_bytes("Redis memory per untracked code", memory.untracked, 150),
        _at_most_bytes("Redis memory per tracked code", memory.tracked, 300),
        _at_most_bytes("Redis memory per interaction", memory.interaction, 250),
        _at_most_times(
            "service CPU per untracked tap, 2 workers vs 1",
            _app_ratio(bench, UNTRACKED_2W, UNTRACKED_1W),
            1.1,
        ),
        _at_least(
            "tracked tap with settling vs held off (medians)",
            _ratio(bench, SETTLING_ON, SETTLING_OFF),
            0.95,
        ),
        _at_least(
            "tracked tap with a webhook delivering vs without (medians)",
            _ratio(bench, WEBHOOK_ON, WEBHOOK_OFF),
            0.85,
        ),
        _at_most_seconds(
            "webhook backlog drained after the taps end", bench.drain_seconds, DRAIN_GOAL_SECONDS
        ),
        _at_most_ms(
            f"{CAMPAIGN_LIST} (median of {ANALYTICS_QUERIES})",
            listed.p50_ms if (listed := bench.results.get(CAMPAIGN_LIST)) else None,
            ANALYTICS_GOAL_MS,
        ),
        _at_least(
            f"untracked tap on a branded domain vs on the default one (medians of "
            f"{DOMAIN_ROUNDS} interleaved rounds)",
            _ratio(bench, BRANDED, DEFAULT_DOMAIN),
            0.95,
        ),
    ]


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# The runs whose Redis commands the report breaks down.
COMMAND_RUNS = (REFERENCE_RUNS["get"], REFERENCE_RUNS["get-xadd"], UNTRACKED, TRACKED, SHORTEN)


def command_table(bench: Bench) -> list[str]:
    """Per run, each Redis command's calls and µs (`INFO commandstats`, Redis' time inside
    the command; I/O and parsing are not in it) per request."""
    lines = [
        "| Redis per request, medians of the rounds | command | calls | µs in the command |",
        "| --- | --- | ---: | ---: |",
    ]
    for name in COMMAND_RUNS:
        result = bench.results.get(name)
        if result is None or result.cost is None:
            continue
        for command, (calls, usec) in sorted(
            result.cost.commands.items(), key=lambda item: -item[1][1]
        ):
            if command != "info" and calls >= 0.01:
                lines.append(f"| {name} | {command} | {calls:.2f} | {usec:.2f} |")
    return [*lines, ""]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def report(
    args: argparse.Namespace, bench: Bench, memory: Memory, started: datetime, host: str
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {host}",
        f"- versions: {versions()}",
        f"- settings: wrk -t{WRK_THREADS} -c{args.connections}, {args.seconds} s per run after a "
        f"{min(WARMUP_SECONDS, args.seconds)} s warm-up; taps on random codes of "
        f"{CODES:,} untracked and {CODES:,} tracked, 60-character URLs, a phone User-Agent",
        "- one redis-server on 127.0.0.1 over TCP, persistence off (no RDB, no AOF); every app "
        "one uvicorn worker (uvloop, httptools, no access log) unless noted; wrk, Redis and the "
        "app share the machine's CPUs",
        f"- answers checked: every tap a 302 to its code's URL (by wrk's script, against the taps "
        f"in flight on its thread; {REPLAY_SAMPLE} paths a run asked again one at a time), the "
        f"short links of a sample of shorten answers followed, and the interactions stream "
        f"grown by one entry per tracked tap answered and by none for untracked taps",
        "",
        f"- rounds: the reference apps and the service's taps and single shorten calls run "
        f"interleaved, {TAP_ROUNDS} rounds of each; a figure is the median of its rounds, "
        f"and `spread` the lowest and highest rate of them. CPU µs per request: every process "
        f"of the app (its scheduler time, `/proc/*/task/*/schedstat`) and redis-server "
        f"(`INFO cpu`), over the measured run, per request answered",
        "",
        "How to read it: on a shared machine the rate of one run moves by tens of percent from "
        "one minute to the next, for the references as much as for the service. Judge the "
        "service against the reference apps of the same run, by the medians of the interleaved "
        "rounds, and look at the spread: where two runs' spreads overlap, their difference is "
        "noise. CPU µs per request moves far less than the rate and says where the time goes: "
        "in the app's processes, or in Redis (which does not grow by adding app processes, so "
        "its cost per tap sets the size of a cluster). The Redis table below breaks Redis' "
        "time down by command (`INFO commandstats`: time inside each command; a script's "
        "`evalsha` includes the commands it runs, and I/O and parsing are in neither).",
        "",
        "| run | req/s | spread | p50 | p99 | app CPU µs/req | Redis CPU µs/req | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = [
        *REFERENCE_RUNS.values(),
        UNTRACKED,
        TRACKED,
        SHORTEN,
        BATCH,
        SETTLING_OFF,
        SETTLING_ON,
        WEBHOOK_OFF,
        WEBHOOK_ON,
        DELIVERY,
        CAMPAIGN_LIST,
        DAILY_SERIES,
        CAMPAIGN_SERIES,
        DEFAULT_DOMAIN,
        BRANDED,
        UNTRACKED_1W,
        UNTRACKED_2W,
    ]
    for name in order:
        result = bench.results.get(name)
        if result is None:
            continue
        rate = f"{result.rate:,.0f}" + ("" if result.unit == "req/s" else f" {result.unit}")
        spread = f"{result.spread[0]:,.0f} to {result.spread[1]:,.0f}" if result.spread else "-"
        errors = f"{result.errors} ({result.note})" if result.errors else "0"
        cost = result.cost
        app_us = _us(cost.app_us if cost else None)
        redis_us = _us(cost.redis_us if cost else None)
        lines.append(
            f"| {name} | {rate} | {spread} | {_ms(result.p50_ms)} | {_ms(result.p99_ms)} "
            f"| {app_us} | {redis_us} | {errors} |"
        )
    rss = f"{memory.rss / MIB:.1f} MiB" if memory.rss else "not measured"
    lines += [
        "",
        "| memory | bytes |",
        "| --- | ---: |",
        f"| Redis per untracked code | {_bytes(memory.untracked)} |",
        f"| Redis per tracked code | {_bytes(memory.tracked)} |",
        f"| Redis per interaction (tracked tap) | {_bytes(memory.interaction)} |",
        f"| service RSS after the runs (1 worker) | {rss} |",
        "",
        f"Memory: `used_memory` on a flushed Redis, with idle connections, before and after "
        f"shortening {CODES:,} codes of each kind (one link a message, no message_id) "
        f"and tapping each tracked code once; an interaction includes its link's click counter.",
        "",
        *command_table(bench),
        "| goal | measured | target | |",
        "| --- | ---: | ---: | --- |",
    ]
    for goal in goals(bench, memory):
        status = {True: "met", False: "**not met**", None: "not run"}[goal.met]
        lines.append(f"| {goal.what} | {goal.measured} | {goal.target} | {status} |")
    if bench.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in bench.notes]
    if bench.problems:
        lines += ["", "## Problems", ""]
        lines += [f"- {problem}".replace("\n", "\n  ") for problem in bench.problems]
    return "\n".join(lines) + "\n"


def _bytes(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0f}"


# Main


def run(args: argparse.Namespace, directory: Path, bench: Bench, memory: Memory) -> None:
    with redis_server(directory / "redis") as (client, redis_url):
        bench.redis = client
        with running_service(redis_url, directory) as main_service:
            print(f"seeding {CODES:,} untracked and {CODES:,} tracked codes", file=sys.stderr)
            untracked_codes = seed(main_service, CODES, False, 0)
            tracked_codes = seed(main_service, CODES, True, CODES)
            untracked, tracked = tap_answers(untracked_codes), tap_answers(tracked_codes)
            # The fixed reference app looks nothing up: every path gets the same Location.
            fixed = [(path, FIXED_TARGET) for path, _ in untracked]
            untracked_paths = str(write_paths(directory / "untracked.txt", untracked))
            tracked_paths = str(write_paths(directory / "tracked.txt", tracked))
            fixed_paths = str(write_paths(directory / "fixed.txt", fixed))
            seed_reference_keys(client, untracked_codes + tracked_codes)
            shorten_args = [main_service.api_key, str(write_shorten_message(directory))]
            clicks, no_clicks = Stream(client, STREAM, True), Stream(client, STREAM, False)
            with contextlib.ExitStack() as references:
                servers = {
                    app: references.enter_context(reference_app(app, redis_url, directory))
                    for app in (REFERENCE_RUNS if "taps" in args.parts else ())
                }

                def reference(app: str) -> Runner:
                    answers, paths = (
                        (fixed, fixed_paths) if app == "fixed" else (untracked, untracked_paths)
                    )
                    recorded = Stream(client, REFERENCE_STREAM, app == "get-xadd")
                    server = servers[app]
                    return lambda label: bench.load(
                        label,
                        TAPS_SCRIPT,
                        server.base_url + "/",
                        [paths],
                        app=server,
                        stream=recorded,
                        replay=answers,
                    )

                def taps(paths: str, stream: Stream, answers: list[tuple[str, str]]) -> Runner:
                    return lambda label: service_load(
                        bench,
                        main_service,
                        label,
                        TAPS_SCRIPT,
                        [paths],
                        stream=stream,
                        replay=answers,
                    )

                def shorten(label: str) -> RunResult:
                    result = service_load(bench, main_service, label, SHORTEN_SCRIPT, shorten_args)
                    check_shortened(bench, result, [[SHORTEN_LINKS]] * len(result.samples))
                    return result

                if "taps" in args.parts:
                    interleaved(
                        bench,
                        [
                            (REFERENCE_RUNS["get"], reference("get")),
                            (UNTRACKED, taps(untracked_paths, no_clicks, untracked)),
                            (REFERENCE_RUNS["pipelined"], reference("pipelined")),
                            (TRACKED, taps(tracked_paths, clicks, tracked)),
                            (REFERENCE_RUNS["get-xadd"], reference("get-xadd")),
                            (SHORTEN, shorten),
                            (REFERENCE_RUNS["fixed"], reference("fixed")),
                        ],
                        TAP_ROUNDS,
                    )
            if "settling" in args.parts:
                with bench.step(SETTLING_ON):
                    settling_rounds(bench, main_service, tracked_paths, clicks, client)
            if "batch" in args.parts:
                print(f"running {BATCH}", file=sys.stderr)
                with bench.step(BATCH):
                    result = bench.record(asyncio.run(shorten_batches(main_service, args.seconds)))
                    wanted = [
                        [batch_links(n) for n in batch_numbers(c)] for c in range(BATCH_CLIENTS)
                    ]
                    check_shortened(bench, result, wanted)
            memory.rss = vm_rss(main_service.process.pid)
            if "delivery" in args.parts:
                with (
                    bench.step(DELIVERY),
                    reference_app("receiver", redis_url, directory) as receiver,
                ):
                    delivery_rounds(bench, main_service, tracked_paths, clicks, receiver)
            if "analytics" in args.parts:
                with bench.step(CAMPAIGN_LIST):
                    analytics_queries(bench, main_service, client)
            # Last on this service: once the org has a domain, its links are issued there.
            if "domains" in args.parts:
                with bench.step(BRANDED):
                    domain_rounds(bench, main_service, untracked_paths, no_clicks, directory)

        if args.workers_check and "workers" in args.parts:
            with (
                bench.step(UNTRACKED_2W),
                running_service(redis_url, directory) as single,
                running_service(redis_url, directory, workers=2) as doubled,
            ):

                def taps_on(service: Service) -> Runner:
                    return lambda label: service_load(
                        bench, service, label, TAPS_SCRIPT, [untracked_paths], stream=no_clicks
                    )

                interleaved(
                    bench,
                    [(UNTRACKED_1W, taps_on(single)), (UNTRACKED_2W, taps_on(doubled))],
                    WORKER_ROUNDS,
                )
        if "memory" in args.parts:
            with bench.step("memory"):
                measure_memory(client, redis_url, directory, memory)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10, help="length of each run (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument(
        "--workers-check", action="store_true", help="also run the untracked taps on 2 workers"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and temporary files")
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        help="run only this part (again for more); the report marks the rest not run",
    )
    args = parser.parse_args(argv)
    args.parts = frozenset(args.only or PARTS)
    if args.seconds < 1 or args.connections < WRK_THREADS:
        parser.error(f"--seconds must be 1 or more, --connections {WRK_THREADS} or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (as root: apt-get install -y wrk)", file=sys.stderr)
        return 2
    # A plain `kill` cleans up like Ctrl-C does, through the `finally`s.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    host = machine()
    directory = Path(tempfile.mkdtemp(prefix="shortener-bench-"))
    bench = Bench(args.seconds, args.connections, directory)
    memory = Memory()
    keep = args.keep
    try:
        run(args, directory, bench, memory)
        scan_service_logs(bench)
        keep = keep or bool(bench.problems)
    except (HarnessError, httpx.HTTPError, redis.RedisError, OSError) as error:
        print(f"bench: could not run: {error}", file=sys.stderr)
        keep = True
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every server was stopped", file=sys.stderr)
        return 130
    finally:
        if keep:
            print(f"bench: logs kept in {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)
    text = report(args, bench, memory, started, host)
    if args.parts == frozenset(PARTS):
        RESULTS_FILE.write_text(text)
    else:
        print(f"bench: only {', '.join(sorted(args.parts))}: {RESULTS_FILE} is left as it was")
    print(text)
    if bench.problems:
        print(f"bench: {len(bench.problems)} problem(s), see above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
