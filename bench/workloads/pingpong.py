# SPDX-License-Identifier: MIT
"""Two threads hand a number back and forth through two queues for a fixed time: each switches
off and on a CPU tens of thousands of times a second, the most context-switch records a
thread's perf ring gets (target/perf.c sizes the ring for it). Prints the round trips.

python pingpong.py [--seconds S]

Measured with `crux record -q --stats -r 100 -f collapsed -o /tmp/pp.txt -- python3
bench/workloads/pingpong.py` and the perf_lost figure of --stats."""
import argparse
import queue
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    ping, pong = queue.SimpleQueue(), queue.SimpleQueue()

    def echo():
        while True:
            x = ping.get()
            if x is None:
                return
            pong.put(x)

    t = threading.Thread(target=echo)
    t.start()
    end = time.time() + a.seconds
    n = 0
    while time.time() < end:
        ping.put(n)
        pong.get()
        n += 1
    ping.put(None)
    t.join()
    print(n)


if __name__ == "__main__":
    main()
