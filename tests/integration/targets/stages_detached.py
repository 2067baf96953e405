"""Stage target with no recorder: stages cost a flag check and write nothing.

Runs many stages, requests and marks without a recorder, forks a child (which must get a
ring of its own and remove it when it exits), then reports and waits to be killed.
"""
import os
import sys
import time

import crux
from _harness import parse_args, write_truth


def main():
    args = parse_args(__doc__)
    for i in range(2000):
        with crux.request():
            with crux.stage("s%d" % (i % 3)):
                pass
            crux.mark("m")
    child_ring = None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, (crux.ring_path() or "").encode())
        os.close(w)
        with crux.stage("in-child"):
            pass
        sys.exit(0)
    os.close(w)
    child_ring = os.read(r, 4096).decode()
    os.close(r)
    _, status = os.waitpid(pid, 0)
    write_truth(args.truth, {"phase": "ready", "ring": crux.ring_path(),
                             "attached": crux.attached(), "child_pid": pid,
                             "child_ring": child_ring, "child_status": status,
                             "child_ring_left": os.path.exists(child_ring)})
    time.sleep(60)


if __name__ == "__main__":
    main()
