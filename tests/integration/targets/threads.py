"""Eight worker threads, each with its own call chain level_a_i -> level_b_i -> worker_i.

Even workers burn CPU in Python, odd workers sleep in short naps. The truth
file (written once every worker runs, then kept) maps each worker function to
its thread's native id, so a profiler's per-thread roots and a dump's thread
ids can be checked against it.
"""
import threading
import time

from _harness import native_id, parse_args, write_truth

N_WORKERS = 8


class Ctx(object):
    def __init__(self, index, end):
        self.index = index
        self.end = end
        self.tid = None
        self.started = threading.Event()

    def work(self):
        self.tid = native_id()
        self.started.set()
        n = 0
        while time.perf_counter() < self.end:
            if self.index % 2:
                time.sleep(0.005)
            else:
                for i in range(200):
                    n += i
        return n


def level_a_0(ctx):
    return level_b_0(ctx)


def level_b_0(ctx):
    return worker_0(ctx)


def worker_0(ctx):
    return ctx.work()


def level_a_1(ctx):
    return level_b_1(ctx)


def level_b_1(ctx):
    return worker_1(ctx)


def worker_1(ctx):
    return ctx.work()


def level_a_2(ctx):
    return level_b_2(ctx)


def level_b_2(ctx):
    return worker_2(ctx)


def worker_2(ctx):
    return ctx.work()


def level_a_3(ctx):
    return level_b_3(ctx)


def level_b_3(ctx):
    return worker_3(ctx)


def worker_3(ctx):
    return ctx.work()


def level_a_4(ctx):
    return level_b_4(ctx)


def level_b_4(ctx):
    return worker_4(ctx)


def worker_4(ctx):
    return ctx.work()


def level_a_5(ctx):
    return level_b_5(ctx)


def level_b_5(ctx):
    return worker_5(ctx)


def worker_5(ctx):
    return ctx.work()


def level_a_6(ctx):
    return level_b_6(ctx)


def level_b_6(ctx):
    return worker_6(ctx)


def worker_6(ctx):
    return ctx.work()


def level_a_7(ctx):
    return level_b_7(ctx)


def level_b_7(ctx):
    return worker_7(ctx)


def worker_7(ctx):
    return ctx.work()


CHAINS = [level_a_0, level_a_1, level_a_2, level_a_3, level_a_4, level_a_5, level_a_6, level_a_7]


def main():
    args = parse_args(__doc__.splitlines()[0])
    end = time.perf_counter() + args.duration
    ctxs = [Ctx(i, end) for i in range(N_WORKERS)]
    threads = [threading.Thread(target=CHAINS[i], args=(ctxs[i],), name="crux-worker-%d" % i)
               for i in range(N_WORKERS)]
    for t in threads:
        t.daemon = True
        t.start()
    for c in ctxs:
        c.started.wait(10)
    workers = dict(("worker_%d" % c.index, c.tid) for c in ctxs)
    names = dict(("worker_%d" % i, t.name) for i, t in enumerate(threads))
    write_truth(args.truth, {"workers": workers, "names": names, "main_tid": native_id()})
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
