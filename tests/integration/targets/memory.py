"""Memory that rises and falls in known functions.

grow() builds 500 MB in 50 MB steps (written, so resident), hold() keeps it
while sleeping, release() drops it, and settle() idles afterwards. The truth
file has the resident size the target saw itself before, at the peak and after.
"""
import time

from _harness import parse_args, write_truth

STEP = 50 << 20
STEPS = 10


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def grow(keep):
    for _ in range(STEPS):
        keep.append(bytearray(b"\x01") * STEP)
        time.sleep(0.03)


def hold(seconds):
    time.sleep(seconds)


def release(keep):
    del keep[:]


def settle(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def main():
    args = parse_args(__doc__, duration=0.5)
    settle(0.3)
    before = rss()
    keep = []
    grow(keep)
    peak = rss()
    hold(args.duration)
    release(keep)
    after = rss()
    settle(args.duration)
    write_truth(args.truth, {"before": before, "peak": peak, "after": after})


if __name__ == "__main__":
    main()
