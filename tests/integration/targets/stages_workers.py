"""Stage target with worker processes, like a server with forked workers: two forked
children and the parent each serve requests (5, 5 and 3) with one stage, "work". Each
process numbers its requests from the same counter, so ids repeat across processes.
"""
import os
import sys
import time

import crux
from _harness import parse_args, write_truth


def wait_attached():
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)


def serve(n):
    wait_attached()
    for _ in range(n):
        with crux.request():
            with crux.stage("work"):
                time.sleep(0.003)


def main():
    args = parse_args(__doc__)
    write_truth(args.truth, {"phase": "ready"})
    wait_attached()
    workers = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            serve(5)
            sys.exit(0)
        workers.append(pid)
    serve(3)
    statuses = [os.waitpid(pid, 0)[1] for pid in workers]
    write_truth(args.truth, {"phase": "done", "workers": workers, "statuses": statuses})


if __name__ == "__main__":
    main()
