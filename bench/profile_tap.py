"""Where a request's time goes: py-spy samples the service while wrk drives it.

    python bench/profile_tap.py [--tracked | --shorten] [--seconds 10]

Taps on untracked codes by default, on tracked codes with --tracked, or single shorten
requests with --shorten.

Prints the functions with the most samples, by own time and by time including callees.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

import bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--tracked", action="store_true", help="profile tracked taps")
    kind.add_argument("--shorten", action="store_true", help="profile single shorten calls")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="shortener-profile-") as temp:
        directory = Path(temp)
        with (
            harness.redis_server(directory / "redis") as (_, redis_url),
            bench.running_service(redis_url, directory) as service,
        ):
            codes = bench.seed(service, 5000, args.tracked, 0)
            paths = bench.write_paths(directory / "paths.txt", bench.tap_answers(codes))
            raw = directory / "profile.txt"
            command = [py_spy, "record", "--pid", str(service.process.pid), "--format", "raw"]
            command += ["--output", str(raw), "--duration", str(args.seconds), "--rate", "200"]
            spy = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            script, script_args = bench.TAPS_SCRIPT, [str(paths)]
            if args.shorten:
                message = bench.write_shorten_message(directory)
                script, script_args = bench.SHORTEN_SCRIPT, [service.api_key, str(message)]
            result = bench.run_wrk(
                "load", script, service.base_url, script_args, args.seconds, 64, directory
            )
            spy.wait(args.seconds + 30)
        own: collections.Counter[str] = collections.Counter()
        total: collections.Counter[str] = collections.Counter()
        samples = 0
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            count = int(count_text)
            frames = [frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")")
                      for frame in stack.split(";")]  # fmt: skip
            samples += count
            own[frames[-1]] += count
            for frame in set(frames):
                total[frame] += count
    print(f"{result.rate:,.0f} req/s under py-spy; {samples} samples")
    for title, counter in (("own time", own), ("including callees", total)):
        print(f"\n{title}:")
        for frame, count in counter.most_common(args.top):
            print(f"{100 * count / samples:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
