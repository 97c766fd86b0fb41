"""CPU time spent by the processes of a run: an app's (every process of its group) and
redis-server's, read before and after the measured run.

Requests per second move by tens of percent on a shared machine from one minute to the next;
the CPU time each request costs moves far less, and shows which process the time goes to.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import redis

PROC = Path("/proc")


def group_cpu_ns(group: int) -> int:
    """CPU time (ns) of every thread of every live process in the process group `group`,
    from the scheduler's own accounting (`schedstat`, to the nanosecond; `stat` counts
    whole ticks)."""
    total = 0
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:
                continue
            for task in (stat.parent / "task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            # A process or thread that ended meanwhile.
            continue
    return total


def redis_cpu_us(client: redis.Redis) -> float:
    """CPU time redis-server used so far (µs), every thread of it."""
    cpu = client.info("cpu")
    return (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


def command_stats(client: redis.Redis) -> Counter[str]:
    """Calls and µs so far per command (`name calls`, `name usec`); scripts show as the
    EVALSHA that ran them."""
    found: Counter[str] = Counter()
    for name, stats in client.info("commandstats").items():
        command = name.removeprefix("cmdstat_")
        found[f"{command} calls"] = int(stats["calls"])
        found[f"{command} usec"] = int(stats["usec"])
    return found


@dataclass
class CpuReading:
    app_ns: int
    redis_us: float
    commands: Counter[str]


def read(client: redis.Redis, group: int | None) -> CpuReading:
    return CpuReading(
        group_cpu_ns(group) if group is not None else 0,
        redis_cpu_us(client),
        command_stats(client),
    )


@dataclass
class CpuPerRequest:
    app_us: float | None
    redis_us: float
    # Per command: calls and µs of Redis per request.
    commands: dict[str, tuple[float, float]]


def per_request(
    before: CpuReading, after: CpuReading, requests: int, app: bool
) -> CpuPerRequest | None:
    if requests <= 0:
        return None
    grown = after.commands.copy()
    grown.subtract(before.commands)
    commands = {
        name.removesuffix(" calls"): (
            grown[name] / requests,
            grown[name.replace(" calls", " usec")] / requests,
        )
        for name in grown
        if name.endswith(" calls") and grown[name] > 0
    }
    return CpuPerRequest(
        (after.app_ns - before.app_ns) / 1000 / requests if app else None,
        (after.redis_us - before.redis_us) / requests,
        commands,
    )
