"""Stage target for a recorder that dies without detaching: once attached, it writes
stages until the agent notices the recorder's stale heartbeat and clears `attached`
(run with a short CRUX_AGENT_READER_TIMEOUT_MS), then reports how long that took."""
import time

import crux
from _harness import parse_args, write_truth


def main():
    args = parse_args(__doc__)
    write_truth(args.truth, {"phase": "ready"})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    write_truth(args.truth, {"phase": "attached"})
    t0 = time.monotonic()
    deadline = t0 + 20
    n = 0
    while crux.attached() and time.monotonic() < deadline:
        with crux.stage("x"):
            pass
        n += 1
        if n % 200 == 0:
            time.sleep(0.001)
    write_truth(args.truth, {"phase": "done", "detached": not crux.attached(), "stages": n,
                             "seconds": time.monotonic() - t0})


if __name__ == "__main__":
    main()
