"""Reads file digests that a worker process computes and writes to a pipe, with os.read.

The worker (a child python) hashes generated blocks with sha256 and writes one line per
block; the parent reads the pipe with plain os.read calls and keeps a tally. The parent
waits on the pipe, that is on the other process, most of the time: queue.
"""
import os
import subprocess
import sys

from _timing import Clock, parse_args

WORKER = r"""
import hashlib, os, sys
block = os.urandom(1 << 16)
n = 0
while True:
    digest = hashlib.sha256(block + n.to_bytes(8, "little")).hexdigest()
    for _ in range(40):
        digest = hashlib.sha256(digest.encode() + block[:4096]).hexdigest()
    os.write(1, ("%d %s\n" % (n, digest)).encode())
    n += 1
"""


def main():
    args = parse_args(__doc__)
    worker = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE)
    fd = worker.stdout.fileno()
    clock = Clock()
    tally = {}
    pending = b""
    lines = 0
    try:
        while clock.elapsed() < args.duration:
            with clock("queue"):
                chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            with clock("host"):
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    tally[line[-2:]] = tally.get(line[-2:], 0) + 1
                lines += len(complete)
    finally:
        worker.kill()
        worker.wait()
    clock.write(args.truth, expect="queue", lines=lines, buckets=len(tally))


if __name__ == "__main__":
    main()
