"""Parses a CSV export of sensor readings with pandas and summarizes it per device.

The CSV text is generated once and kept in memory; every round pandas parses it again
(read_csv from a StringIO) and groups it. The time is CPU in pandas' C parser and
group-by code, with no file I/O: host bound.
"""
import io
import random

import pandas as pd

from _timing import Clock, parse_args


def make_csv(rng, rows):
    lines = ["device,timestamp,temperature,humidity,status"]
    for i in range(rows):
        lines.append("dev-%03d,2024-03-01T%02d:%02d:%02d,%.2f,%.1f,%s"
                     % (rng.randrange(200), i // 3600 % 24, i // 60 % 60, i % 60,
                        rng.uniform(-5, 35), rng.uniform(10, 90),
                        rng.choice(["ok", "ok", "ok", "warn", "fail"])))
    return "\n".join(lines)


def main():
    args = parse_args(__doc__)
    text = make_csv(random.Random(8), 60000)
    clock = Clock()
    rounds = 0
    summary = None
    while clock.elapsed() < args.duration:
        with clock("host"):
            frame = pd.read_csv(io.StringIO(text), parse_dates=["timestamp"])
            summary = frame.groupby("device").agg(
                temp_mean=("temperature", "mean"), temp_max=("temperature", "max"),
                humidity=("humidity", "median"),
                failures=("status", lambda s: (s == "fail").sum()))
        rounds += 1
    clock.write(args.truth, expect="host", rounds=rounds, devices=len(summary))


if __name__ == "__main__":
    main()
