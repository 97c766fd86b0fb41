"""Soak test: a real service and Redis under a steady mixed load, `python bench/soak.py`.

Starts its own `redis-server` (AOF, fsync every second, in a temporary directory) and
`shortener serve` with one worker, seeds a few thousand short codes (tracked and untracked),
and runs wrk with `bench/soak.lua`: mostly recipients' taps on the seeded codes from phone
browsers, some gateways' shorten calls. Meanwhile it samples the service's resident memory
and Redis's `used_memory` every few seconds. At the end it prints a markdown report and
exits non-zero when a request failed, when a tap was not a 302 to its code's URL (wrk's
script checks every answer against the taps in flight, and a sample of the codes is tapped
again one at a time), when the recorded clicks do not match the tracked taps answered, or
when the service's memory kept growing after the warm-up.

Not part of the test suite: it needs wrk (`make soak` installs it where it can) and takes a
minute. Everything it starts is stopped again, also on Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness
from harness import HarnessError, Service, spawn, stop

LUA_SCRIPT = Path(__file__).with_name("soak.lua")
ORG = "soak"
TRACKED_TARGET = "https://tracked.example.com/p/{}"
UNTRACKED_TARGET = "https://plain.example.com/p/{}"
SEED_BATCH = 500
SAMPLE_SECONDS = 5.0
WARMUP_SECONDS = 10.0
# wrk stops on time by itself; this is only the bound for a wrk that hangs.
WRK_GRACE_SECONDS = 30.0
# Requests still being answered when wrk stops may record clicks after it exits.
SETTLE_SECONDS = 10.0
# Codes tapped again one at a time after the load, each answer paired with its request.
REPLAY_SAMPLE = 50
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
MIB = 1024 * 1024
LOG_LINES = 20


class SoakFailed(HarnessError):
    """The soak could not be set up or run; the message says why."""


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: object) -> None:
    # Once is enough: a second Ctrl-C must not cut short the (bounded) stopping of the
    # service and Redis.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Interrupted(signum)


@dataclass
class Sample:
    at: float
    rss: int
    cpu: float
    redis_memory: int


@dataclass
class Metric:
    name: str
    labels: dict[str, str]
    value: float


def seed(
    service: Service, count: int, tracked_share: float, codes_file: Path
) -> list[tuple[str, str, bool]]:
    """Issue `count` codes, every k-th of them tracked; write them for soak.lua. Returns each
    code's path, the Location its tap must answer and whether it is tracked."""
    every = max(1, round(1 / tracked_share))
    wanted = [n % every == 0 for n in range(count)]
    messages: list[dict[str, Any]] = []
    targets: list[str] = []
    for n, tracked in enumerate(wanted):
        target = (TRACKED_TARGET if tracked else UNTRACKED_TARGET).format(n)
        targets.append(target)
        message: dict[str, Any] = {
            "message_id": f"seed-{n}",
            "body": f"Parcel {n} is on its way: {target} Reply STOP to opt out",
        }
        if tracked:
            message["recipient"] = {"contact_id": f"c-{n % 997}", "tracking_consent": True}
        messages.append(message)
    codes = harness.issue_codes(service, messages, wanted, batch=SEED_BATCH, timeout=60)
    seeded = [
        (f"/{code}", target, tracked)
        for code, target, tracked in zip(codes, targets, wanted, strict=True)
    ]
    lines = [f"{'t' if tracked else 'u'} {path} {target}" for path, target, tracked in seeded]
    codes_file.write_text("\n".join(lines) + "\n")
    return seeded


def _vm_rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after it do not.
        parent = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (its reaped children's included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat[stat.rfind(")") + 2 :].split()
    # utime, stime, cutime and cstime: fields 14 to 17 in proc(5); this list starts at 3.
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def process_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (uvicorn workers, if any)."""
    return sum(_vm_rss_bytes(p) for p in [pid, *_descendants(pid)])


def redis_used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


_METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(service: Service) -> list[Metric]:
    response = httpx.get(f"{service.base_url}/metrics", timeout=10)
    response.raise_for_status()
    metrics = []
    for line in response.text.splitlines():
        match = _METRIC_LINE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match.group(2) or ""))
            metrics.append(Metric(match.group(1), labels, float(match.group(3))))
    return metrics


def total(metrics: list[Metric], name: str, **labels: str) -> float:
    return sum(
        m.value
        for m in metrics
        if m.name == name and all(m.labels.get(k) == v for k, v in labels.items())
    )


def metric_delta(before: list[Metric], after: list[Metric], name: str, **labels: str) -> int:
    return round(total(after, name, **labels) - total(before, name, **labels))


def requests_by_status(before: list[Metric], after: list[Metric]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for m in after:
        if m.name == "shortener_requests_total":
            counts[(m.labels["route"], m.labels["status"])] += round(m.value)
    for m in before:
        if m.name == "shortener_requests_total":
            counts[(m.labels["route"], m.labels["status"])] -= round(m.value)
    return +counts


def histogram_quantile(before: list[Metric], after: list[Metric], name: str, q: float) -> float:
    """The upper bound of the bucket holding quantile q of what was observed in between."""
    buckets: dict[float, float] = {}
    for sign, metrics in ((-1, before), (1, after)):
        for m in metrics:
            if m.name == f"{name}_bucket":
                bound = float(m.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sign * m.value
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return math.nan
    rank = q * ordered[-1][1]
    return next(bound for bound, cumulative in ordered if cumulative >= rank)


def settled_stream_length(client: redis.Redis, key: str) -> int:
    """XLEN once it stops changing: taps still being answered when wrk quit may land late."""
    deadline = time.monotonic() + SETTLE_SECONDS
    length = int(client.xlen(key))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = int(client.xlen(key))
        if again == length:
            break
        length = again
    return length


def read_wrk_results(path: Path, output: Path) -> tuple[dict[str, float], list[str]]:
    """wrk's figures and the script's counters; and the wrong answers it noted."""
    if not path.exists():
        raise SoakFailed(f"wrk wrote no results; its output:\n{harness.tail(output, LOG_LINES)}")
    results = {}
    wrong = []
    for line in path.read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "wrong":
            wrong.append(value)
        else:
            results[name] = float(value)
    return results, wrong


def run_wrk(
    args: argparse.Namespace,
    service: Service,
    redis_client: redis.Redis,
    codes_file: Path,
    directory: Path,
) -> tuple[dict[str, float], list[str], list[Sample], str]:
    result_file = directory / "wrk-results.txt"
    output = directory / "wrk.out"
    command = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        f"--timeout={args.timeout}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        f"{service.base_url}/",
        "--",
        str(codes_file),
        service.api_key,
        str(result_file),
        str(args.shorten_share),
    ]

    def sample(started: float) -> Sample:
        return Sample(
            time.monotonic() - started,
            process_rss(service.process.pid),
            process_cpu_seconds(service.process.pid),
            redis_used_memory(redis_client),
        )

    started = time.monotonic()
    samples = [sample(started)]
    process = spawn(command, output)
    try:
        deadline = started + args.seconds + WRK_GRACE_SECONDS
        next_sample = started + SAMPLE_SECONDS
        while True:
            try:
                process.wait(max(0.0, next_sample - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise SoakFailed(f"wrk did not finish within {args.seconds + WRK_GRACE_SECONDS} s")
            if service.process.poll() is not None:
                raise SoakFailed(
                    f"the service died under load:\n{harness.tail(service.log, LOG_LINES)}"
                )
            samples.append(sample(started))
            print(
                f"  {samples[-1].at:5.1f} s  service RSS {samples[-1].rss / MIB:7.1f} MiB"
                f"  Redis used_memory {samples[-1].redis_memory / MIB:7.1f} MiB",
                file=sys.stderr,
            )
            next_sample += SAMPLE_SECONDS
        samples.append(sample(started))
    finally:
        stop(process, "wrk")
    if process.returncode != 0:
        raise SoakFailed(f"wrk failed ({process.returncode}):\n{harness.tail(output, LOG_LINES)}")
    results, wrong = read_wrk_results(result_file, output)
    return results, wrong, samples, output.read_text(errors="replace")


def scan_log(path: Path) -> tuple[Counter[str], list[str]]:
    """Count the service's log lines by level; the first few of every level but info."""
    levels: Counter[str] = Counter()
    shown: list[str] = []
    with open(path, errors="replace") as log:
        for line in log:
            if '"level": "info"' in line:
                levels["info"] += 1
                continue
            try:
                level = str(json.loads(line).get("level", "?"))
            except (ValueError, AttributeError):
                level = "unstructured"
            levels[level] += 1
            if levels[level] <= 3:
                shown.append(f"{level}: {line.strip()[:300]}")
    return levels, shown


def mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


def ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f} ms"


@dataclass
class Run:
    """What one soak gathered: wrk's figures, the samples, the store and the service's view."""

    args: argparse.Namespace
    wrk: dict[str, float]
    wrong_examples: list[str]
    samples: list[Sample]
    seeded: tuple[int, int]
    interactions: int
    stream_memory: int
    before: list[Metric]
    after: list[Metric]
    log_levels: Counter[str]
    log_lines: list[str]
    # Codes tapped again after the load whose answer was not a 302 to their URL.
    replayed: int = 0
    wrong_replays: list[str] = field(default_factory=list)

    def count(self, name: str) -> int:
        return int(self.wrk.get(name, 0))

    def delta(self, name: str, **labels: str) -> int:
        return metric_delta(self.before, self.after, name, **labels)

    @property
    def socket_errors(self) -> dict[str, int]:
        return {k: self.count(f"errors_{k}") for k in ("connect", "read", "write", "timeout")}

    @property
    def other_statuses(self) -> dict[str, int]:
        prefix = "status_"
        return {k.removeprefix(prefix): int(v) for k, v in self.wrk.items() if k.startswith(prefix)}

    @property
    def by_status(self) -> Counter[tuple[str, str]]:
        return requests_by_status(self.before, self.after)

    @property
    def server_errors(self) -> dict[str, int]:
        return {f"{r} {s}": n for (r, s), n in self.by_status.items() if s.startswith("5")}

    @property
    def warm(self) -> Sample:
        return next((s for s in self.samples if s.at >= WARMUP_SECONDS - 0.5), self.samples[-1])

    @property
    def rss_growth(self) -> float:
        warm, end = self.warm.rss, self.samples[-1].rss
        return (end - warm) / warm if warm else math.nan

    @property
    def in_flight(self) -> int:
        """Tracked taps sent that wrk stopped waiting for; the service may have answered them."""
        return self.count("tracked_sent") - self.count("tracked_ok")


def failures(run: Run) -> list[str]:
    found = []
    if any(run.socket_errors.values()):
        found.append(f"socket errors: {run.socket_errors}")
    if run.count("errors_status"):
        found.append(f"{run.count('errors_status')} non-2xx/3xx responses")
    if run.other_statuses:
        found.append(f"responses other than 302 (tap) or 200 (shorten): {run.other_statuses}")
    if wrong := run.count("wrong_location"):
        found.append(
            f"{wrong} taps answered 302 to a Location no tap in flight asked for, e.g. "
            + "; ".join(run.wrong_examples[:3])
        )
    taps_sent = run.count("tracked_sent") + run.count("untracked_sent")
    if run.count("tracked_ok") + run.count("untracked_ok") > taps_sent:
        found.append(f"more 302s than the {taps_sent} taps sent")
    if run.count("shorten_ok") > run.count("shortens_sent"):
        found.append(f"more 200s than the {run.count('shortens_sent')} shorten calls sent")
    if run.wrong_replays:
        found.append(
            f"{len(run.wrong_replays)} of {run.replayed} codes tapped again after the load were "
            f"not a 302 to their URL, e.g. " + "; ".join(run.wrong_replays[:3])
        )
    if run.server_errors:
        found.append(f"the service answered 5xx: {run.server_errors}")
    if redis_errors := run.delta("shortener_redis_errors_total"):
        found.append(f"{redis_errors} Redis errors or timeouts in the service")

    warm, end = run.warm, run.samples[-1]
    if not warm.rss or not end.rss:
        found.append("could not read the service's RSS")
    elif run.rss_growth > run.args.max_rss_growth:
        found.append(
            f"service RSS grew {run.rss_growth:+.1%} from {warm.at:.0f} s to the end "
            f"({mib(warm.rss)} -> {mib(end.rss)}), more than {run.args.max_rss_growth:.0%}"
        )

    tracked_ok = run.count("tracked_ok")
    if not tracked_ok <= run.interactions <= tracked_ok + run.in_flight:
        found.append(
            f"{run.interactions} interactions recorded for {tracked_ok} tracked taps answered "
            f"and {run.in_flight} more in flight when wrk stopped"
        )
    person = run.delta("shortener_clicks_total", visitor="person")
    if person != run.interactions:
        found.append(f"/metrics counts {person} person clicks, the stream {run.interactions}")
    if bots := run.delta("shortener_clicks_total", visitor="bot"):
        found.append(f"{bots} taps from phone browsers were recorded as bots")

    if bad := sum(n for level, n in run.log_levels.items() if level not in ("info", "warning")):
        found.append(f"{bad} error or unstructured lines in the service log")
    return found


def render(run: Run, failed: list[str]) -> str:
    args, wrk = run.args, run.wrk
    seconds = wrk["duration_us"] / 1e6
    requests = run.count("requests")
    taps = run.count("tracked_ok") + run.count("untracked_ok")
    start, warm, end = run.samples[0], run.warm, run.samples[-1]
    tap_p50, tap_p99 = (
        histogram_quantile(run.before, run.after, "shortener_redirect_seconds", q)
        for q in (0.5, 0.99)
    )
    tracked_ok = run.count("tracked_ok")
    if run.interactions == tracked_ok:
        matched = "equal"
    else:
        matched = (
            f"{run.interactions - tracked_ok:+} from taps the service answered after wrk "
            f"stopped waiting ({run.in_flight} tracked taps were in flight)"
        )
    routes = ", ".join(f"`{r}` {s}: {n:,}" for (r, s), n in sorted(run.by_status.items()))
    rows = [
        ("load", f"{seconds:.1f} s, {args.connections} connections, {args.threads} wrk threads"),
        ("seeded", f"{run.seeded[0]:,} codes, {run.seeded[1]:,} of them tracked"),
        (
            "requests",
            f"{requests:,} ({requests / seconds:,.0f}/s): {taps:,} taps answered 302, "
            f"{run.count('shorten_ok'):,} shortens answered 200",
        ),
        (
            "latency (wrk)",
            f"p50 {ms(wrk['latency_p50_us'])}, p90 {ms(wrk['latency_p90_us'])}, "
            f"p99 {ms(wrk['latency_p99_us'])}, max {ms(wrk['latency_max_us'])}",
        ),
        ("tap latency (service)", f"p50 ≤ {tap_p50 * 1000:g} ms, p99 ≤ {tap_p99 * 1000:g} ms"),
        (
            "errors (wrk)",
            f"non-2xx/3xx {run.count('errors_status')}; socket: "
            + ", ".join(f"{k} {v}" for k, v in run.socket_errors.items()),
        ),
        ("other statuses", ", ".join(f"{k}: {v}" for k, v in run.other_statuses.items()) or "none"),
        (
            "Locations",
            f"{run.count('wrong_location')} 302s to a Location no tap in flight asked for; "
            f"{len(run.wrong_replays)} wrong of {run.replayed} codes tapped again one at a time",
        ),
        (
            "service (/metrics)",
            f"{routes}; 5xx {sum(run.server_errors.values())}; "
            f"Redis errors {run.delta('shortener_redis_errors_total')}",
        ),
        (
            "service RSS",
            f"start {mib(start.rss)}, at {warm.at:.0f} s {mib(warm.rss)}, end {mib(end.rss)} "
            f"({run.rss_growth:+.1%} since {warm.at:.0f} s; "
            f"peak {mib(max(s.rss for s in run.samples))})",
        ),
        (
            "service CPU",
            f"{(end.cpu - start.cpu) / (end.at - start.at):.0%} of one core during the load",
        ),
        (
            f"RSS every {SAMPLE_SECONDS:.0f} s (MiB)",
            " ".join(f"{s.rss / MIB:.1f}" for s in run.samples),
        ),
        (
            "Redis used_memory",
            f"start {mib(start.redis_memory)}, at {warm.at:.0f} s {mib(warm.redis_memory)}, "
            f"end {mib(end.redis_memory)}; {run.delta('shortener_codes_issued_total'):,} codes "
            f"issued during the load, interactions stream {mib(run.stream_memory)}",
        ),
        (
            "interactions",
            f"{run.interactions:,} recorded, {tracked_ok:,} tracked taps answered: {matched}; "
            f"/metrics clicks: person {run.delta('shortener_clicks_total', visitor='person'):,}, "
            f"bot {run.delta('shortener_clicks_total', visitor='bot')}",
        ),
        (
            "service log",
            ", ".join(f"{k} {v:,}" for k, v in sorted(run.log_levels.items())) or "empty",
        ),
    ]
    lines = [f"## Soak test: {args.seconds} s of taps and shortens", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines.append("")
    if failed:
        lines += ["**FAIL**", ""] + [f"- {failure}" for failure in failed]
    else:
        lines.append(
            "**PASS**: no errors, every Location right, clicks match the taps, memory stable "
            "after warm-up."
        )
    if run.log_lines:
        lines += ["", "Service log lines other than info:", ""]
        lines += [f"- `{line}`" for line in run.log_lines]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=60, help="length of the load (default 60)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--codes", type=int, default=4000, help="codes to seed (4000)")
    parser.add_argument(
        "--tracked-share", type=float, default=0.5, help="share of seeded codes tracked (0.5)"
    )
    parser.add_argument(
        "--shorten-share", type=float, default=0.1, help="share of requests that shorten (0.1)"
    )
    parser.add_argument("--timeout", type=int, default=5, help="wrk's request timeout, s (5)")
    parser.add_argument(
        "--max-rss-growth",
        type=float,
        default=0.2,
        help="largest RSS growth from the warm-up to the end that passes (0.2)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.wrk = shutil.which("wrk")
    if args.wrk is None:
        parser.error(
            "wrk is not installed: `make soak` installs it as root, else apt-get install wrk"
        )
    if args.seconds < 2 * WARMUP_SECONDS:
        parser.error(f"--seconds must be at least {2 * WARMUP_SECONDS:.0f} to judge memory")
    if args.connections < args.threads or args.threads < 1:
        parser.error("--connections must be at least --threads, and --threads at least 1")
    if args.codes < 1 or not 0 < args.tracked_share <= 1 or not 0 <= args.shorten_share < 1:
        parser.error("--codes must be positive, shares within (0, 1]")
    return args


def soak(args: argparse.Namespace, directory: Path) -> bool:
    with contextlib.ExitStack() as stack:
        redis_client, redis_url = stack.enter_context(
            harness.redis_server(
                directory / "redis", persistent=True, socket_timeout=5, log_lines=LOG_LINES
            )
        )
        service = stack.enter_context(
            harness.running_service(
                redis_url,
                directory,
                ORG,
                log_name="service.log",
                unanswered="/healthz",
                log_lines=LOG_LINES,
            )
        )
        print(f"service at {service.base_url}; seeding {args.codes} codes", file=sys.stderr)
        codes_file = directory / "codes.txt"
        seeded = seed(service, args.codes, args.tracked_share, codes_file)
        stream = f"{{o:{ORG}}}:ix"
        interactions_before = int(redis_client.xlen(stream))
        metrics_before = scrape(service)
        print(f"running wrk for {args.seconds} s", file=sys.stderr)
        wrk, wrong, samples, output = run_wrk(args, service, redis_client, codes_file, directory)
        print(output, file=sys.stderr)
        interactions = settled_stream_length(redis_client, stream) - interactions_before
        run = Run(
            args=args,
            wrk=wrk,
            wrong_examples=wrong,
            samples=samples,
            seeded=(len(seeded), sum(tracked for _, _, tracked in seeded)),
            interactions=interactions,
            stream_memory=int(redis_client.memory_usage(stream) or 0),
            before=metrics_before,
            after=scrape(service),
            log_levels=Counter(),
            log_lines=[],
        )
        # After the counts above: these taps record clicks too.
        replay = random.sample(seeded, min(REPLAY_SAMPLE, len(seeded)))
        run.replayed = len(replay)
        run.wrong_replays = harness.wrong_redirects(
            [(service.base_url + path, target) for path, target, _ in replay], PHONE
        )
    # Read once the service has stopped, so that its shutdown is in the log too.
    run.log_levels, run.log_lines = scan_log(service.log)
    failed = failures(run)
    print(render(run, failed), flush=True)
    return not failed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Set explicitly: a shell starting this in the background would have SIGINT ignored, and
    # a plain `kill` should clean up like Ctrl-C does, through the `finally`s.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    directory = Path(tempfile.mkdtemp(prefix="shortener-soak-"))
    try:
        return 0 if soak(args, directory) else 1
    except HarnessError as error:
        print(f"soak test could not run: {error}", file=sys.stderr)
        return 2
    except Interrupted as interrupted:
        print(f"{interrupted}: stopped the service and Redis", file=sys.stderr)
        return 128 + interrupted.signum
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
