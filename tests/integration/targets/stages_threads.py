"""Stage target with threads: three workers write stages at once (the ring's many writers),
then two threads park inside a stage so that crux can see which stage each thread is in.

Waits for a recorder, runs 3 x 5 requests of "work" (5 ms) on three threads, then the
thread "waiter" sits in stage "io-wait" and the main thread in "main-stage" until the
recorder detaches. Truth: the workers' and the parked threads' native ids.
"""
import threading
import time

import crux
from _harness import native_id, parse_args, write_truth


def worker(tids, i):
    tids[i] = native_id()
    for _ in range(5):
        with crux.request():
            with crux.stage("work"):
                time.sleep(0.005)


def park(name, tids, ready):
    tids[name] = native_id()
    with crux.stage(name):
        ready.set()
        while crux.attached():
            time.sleep(0.005)


def main():
    args = parse_args(__doc__)
    write_truth(args.truth, {"phase": "ready"})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    tids = {}
    workers = [threading.Thread(target=worker, args=(tids, i)) for i in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    ready = threading.Event()
    waiter = threading.Thread(target=park, args=("io-wait", tids, ready))
    waiter.start()
    ready.wait(30)
    parked = {"waiter": tids["io-wait"], "main": native_id()}
    with crux.stage("main-stage"):
        write_truth(args.truth, {"phase": "waiting", "workers": [tids[i] for i in range(3)],
                                 "parked": parked})
        while crux.attached():
            time.sleep(0.005)
    waiter.join()


if __name__ == "__main__":
    main()
