"""A metrics poller: every 50 ms it parses a status page and updates moving averages, then
sleeps until the next tick.

Nearly all its time is a deliberate time.sleep between small pieces of work. That is the
program's pacing, not a bottleneck: the honest verdict is "no clear bottleneck".
"""
import random
import time

from _timing import Clock, parse_args

INTERVAL = 0.05


def status_page(rng):
    lines = ["# HELP requests_total Requests served."]
    for worker in range(40):
        lines.append('requests_total{worker="%d"} %d' % (worker, rng.randrange(10 ** 6)))
        lines.append('latency_ms{worker="%d"} %.3f' % (worker, rng.uniform(1, 90)))
    return "\n".join(lines)


def parse(text):
    values = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    return values


def main():
    args = parse_args(__doc__)
    rng = random.Random(3)
    averages = {}
    clock = Clock()
    ticks = 0
    next_tick = time.monotonic()
    while clock.elapsed() < args.duration:
        with clock("host"):
            for _ in range(50):
                for name, value in parse(status_page(rng)).items():
                    averages[name] = 0.9 * averages.get(name, value) + 0.1 * value
        ticks += 1
        next_tick += INTERVAL
        with clock("sleep"):
            time.sleep(max(next_tick - time.monotonic(), 0))
    clock.write(args.truth, expect="none", ticks=ticks, series=len(averages))


if __name__ == "__main__":
    main()
