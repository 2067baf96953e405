"""A program that sleeps far longer than a recording, for crux ending what it launched.

sleep_long sleeps --duration seconds (default 60) and then exits with --exit.
The truth file, written before sleeping, holds the pids of this process and
of its children, so a test can check that every one of them is gone.

  --ignore INT|TERM  ignore that signal (repeatable); children inherit it
  --marker PATH      write PATH from a finally block (SIGINT's KeyboardInterrupt
                     runs it; SIGTERM and SIGKILL do not)
  --pool N           the sleeping happens in N multiprocessing pool workers, set
                     up the usual way (workers ignore SIGINT, the parent handles
                     KeyboardInterrupt and terminates the pool)
  --stubborn N       also start N child processes that ignore SIGINT and SIGTERM
"""
import multiprocessing
import signal
import subprocess
import sys
import time

from _harness import parse_args, write_truth

STUBBORN = ("import signal, time\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "time.sleep(600)\n")


def add_arguments(parser):
    parser.add_argument("--ignore", action="append", default=[], choices=["INT", "TERM"])
    parser.add_argument("--marker")
    parser.add_argument("--pool", type=int, default=0)
    parser.add_argument("--stubborn", type=int, default=0)
    parser.add_argument("--exit", type=int, default=0)


def sleep_long(seconds):
    time.sleep(seconds)


def worker_init():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments, duration=60.0)
    for name in args.ignore:
        signal.signal(getattr(signal, "SIG" + name), signal.SIG_IGN)
    children = [subprocess.Popen([sys.executable, "-c", STUBBORN]) for _ in range(args.stubborn)]
    pool = multiprocessing.Pool(args.pool, initializer=worker_init) if args.pool else None
    if pool is not None:
        children += multiprocessing.active_children()
    write_truth(args.truth, {"children": [c.pid for c in children], "phase": "sleeping"})
    try:
        if pool is not None:
            with pool:
                pool.map(sleep_long, [args.duration] * args.pool)
        else:
            sleep_long(args.duration)
    finally:
        if args.marker:
            with open(args.marker, "w") as f:
                f.write("finally ran\n")
    sys.exit(args.exit)


if __name__ == "__main__":
    main()
