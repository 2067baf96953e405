"""Stage target that overruns the ring: --count stages as fast as possible (run it with a
small ring, CRUX_AGENT_RECORDS=64). Every record is either read or counted as lost."""
import time

import crux
from _harness import parse_args, write_truth


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--count", type=int, default=20000))
    write_truth(args.truth, {"phase": "ready"})
    deadline = time.monotonic() + 30
    while not crux.attached() and time.monotonic() < deadline:
        time.sleep(0.005)
    stage = crux.stage
    for _ in range(args.count):
        with stage("burst"):
            pass
    write_truth(args.truth, {"phase": "done", "count": args.count})


if __name__ == "__main__":
    main()
