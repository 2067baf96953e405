"""A parent that forks a child, does its own work meanwhile, and reaps the child.

The child runs child_work for --child-seconds and exits 0 through os._exit.
The parent runs parent_work, watching the child's /proc state, then
parent_after for --duration seconds. The truth records every state letter seen
for the child (a profiler must never leave it stopped: T/t), the child's exit
status, and whether the parent had to give up waiting.
"""
import os
import time

from _harness import parse_args, write_truth


def child_work(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def parent_after(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def parent_work(child, seconds, states):
    end = time.perf_counter() + seconds
    status = None
    n = 0
    while status is None and time.perf_counter() < end:
        for i in range(2000):
            n += i
        state = proc_state(child)
        if state is not None:
            states[state] = states.get(state, 0) + 1
        pid, st = os.waitpid(child, os.WNOHANG)
        if pid == child:
            status = st
    return status


def add_arguments(parser):
    parser.add_argument("--child-seconds", type=float, default=0.8)
    parser.add_argument("--wait-limit", type=float, default=15.0,
                        help="give up on the child after this long")


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments, duration=0.5)
    child = os.fork()
    if child == 0:
        child_work(args.child_seconds)
        os._exit(0)
    states = {}
    status = parent_work(child, args.wait_limit, states)
    hung = status is None
    if hung:
        os.kill(child, 9)
        os.waitpid(child, 0)
    parent_after(args.duration)
    write_truth(args.truth, {
        "child_pid": child,
        "child_states": states,
        "child_hung": hung,
        "child_exited": (not hung) and os.WIFEXITED(status),
        "child_exit_code": os.WEXITSTATUS(status) if (not hung and os.WIFEXITED(status)) else None,
    })


if __name__ == "__main__":
    main()
