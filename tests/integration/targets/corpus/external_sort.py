"""Sorts batches of log lines with the system's `sort` command and keeps the top entries.

Each batch goes through `subprocess.run(["sort", ...], input=..., capture_output=True)`;
the sorting happens in the child, and the program waits for it: waiting on another
process (queue).
"""
import random
import subprocess

from _timing import Clock, parse_args


def make_batch(rng, n):
    return "".join("%s %08d host-%d GET /api/v%d/items/%d\n"
                   % ("2024-05-%02d" % rng.randrange(1, 29), rng.randrange(10 ** 8),
                      rng.randrange(50), rng.randrange(3), rng.randrange(10 ** 5))
                   for _ in range(n)).encode()


def main():
    args = parse_args(__doc__)
    rng = random.Random(2)
    batches = [make_batch(rng, 30000) for _ in range(4)]
    env = {"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"}
    clock = Clock()
    top = []
    runs = 0
    while clock.elapsed() < args.duration:
        with clock("queue"):
            done = subprocess.run(["sort", "-k3,3", "-k2,2nr", "--parallel=1"],
                                  input=batches[runs % 4], capture_output=True, env=env,
                                  check=True)
        with clock("host"):
            top = done.stdout.splitlines()[:10]
        runs += 1
    clock.write(args.truth, expect="queue", runs=runs, top=len(top))


if __name__ == "__main__":
    main()
