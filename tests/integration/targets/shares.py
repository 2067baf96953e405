"""Time shares: one thread alternates short slices of three kinds of time.

cpu_python runs Python bytecode, busy_in_c stays on-CPU inside one C call
(sha256 of a 1 MiB buffer, GIL released, thread state R), sleeper sleeps
(thread state S). The target measures the wall time spent inside each function
and writes it with the shares; a sampling profiler that counts every sample
(--idle) must find the same shares, one that drops idle samples must find the
first two renormalized and the sleeper absent.
"""
import hashlib
import time

from _harness import parse_args, write_truth

BUF = b"\x5a" * (1 << 20)


def cpu_python(slice_s):
    end = time.perf_counter() + slice_s
    n = 0
    while time.perf_counter() < end:
        for i in range(100):
            n += i * i
    return n


def busy_in_c(slice_s):
    end = time.perf_counter() + slice_s
    h = hashlib.sha256()
    while time.perf_counter() < end:
        h.update(BUF)
    return h.digest()


def sleeper(slice_s):
    time.sleep(slice_s)


def add_arguments(parser):
    parser.add_argument("--slice-ms", default="20,10,30",
                        help="milliseconds per slice of cpu_python,busy_in_c,sleeper")


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    slices = [float(x) / 1000.0 for x in args.slice_ms.split(",")]
    plan = list(zip((cpu_python, busy_in_c, sleeper), slices))
    spent = dict((fn.__name__, 0.0) for fn, _ in plan)
    rounds = 0
    clock = time.perf_counter
    end = clock() + args.duration
    while clock() < end:
        for fn, slice_s in plan:
            t0 = clock()
            fn(slice_s)
            spent[fn.__name__] += clock() - t0
        rounds += 1
    total = sum(spent.values())
    shares = dict((k, v / total) for k, v in spent.items())
    write_truth(args.truth, {"seconds": spent, "shares": shares, "rounds": rounds})


if __name__ == "__main__":
    main()
