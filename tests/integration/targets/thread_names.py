"""Threads named the ways programs name them, for Python thread names in crux's outputs.

Starts: two `threading.Thread(name=...)` loaders, a Thread subclass that names itself, a
thread with threading's default name, one with a non-ASCII name, a ThreadPoolExecutor
with a name prefix (its workers are named by concurrent.futures), and one thread started
with `_thread.start_new_thread` (no Thread object: it keeps its OS name). Every thread
loops (some on CPU, some napping) until the end. The truth file maps each native thread
id to the name Python gives it (phase "ready"); when the file given with --rename-flag
appears, loader-2 is renamed at runtime and the truth is written again (phase "renamed").
"""
import _thread
import concurrent.futures
import os
import threading
import time

from _harness import native_id, parse_args, write_truth

STOP = threading.Event()


def spin(busy):
    n = 0
    while not STOP.is_set():
        if busy:
            for i in range(2000):
                n += i
        else:
            time.sleep(0.003)
    return n


class Prefetcher(threading.Thread):
    """A subclass that names itself, as libraries do."""

    def __init__(self):
        super().__init__(name="prefetch-worker", daemon=True)
        self.tid = None

    def run(self):
        self.tid = native_id()
        spin(True)


def named(name, busy, tids):
    def body():
        tids[threading.current_thread().name] = native_id()
        spin(busy)
    return threading.Thread(target=body, name=name, daemon=True)


def add_arguments(parser):
    parser.add_argument("--rename-flag", help="rename loader-2 once this file exists")


def main():
    args = parse_args(__doc__.splitlines()[0], add_arguments, duration=30.0)
    tids = {}
    threads = [named("loader-1", True, tids), named("loader-2", False, tids),
               named("d\u00e9codeur \u51e6\u7406-3", False, tids)]
    default = threading.Thread(target=lambda: (tids.setdefault("default", native_id()),
                                               spin(False)), daemon=True)
    pre = Prefetcher()
    for t in threads + [default, pre]:
        t.start()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="embedder")
    pool_tids = {}

    def pooled(i):
        pool_tids[threading.current_thread().name] = native_id()
        return spin(i == 0)
    futures = [pool.submit(pooled, i) for i in range(2)]

    raw = {}

    def raw_body():
        raw["tid"] = native_id()  # never calls threading.current_thread(): no _DummyThread
        spin(False)
    _thread.start_new_thread(raw_body, ())

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
            len(tids) < 4 or pre.tid is None or len(pool_tids) < 2 or "tid" not in raw):
        time.sleep(0.01)
    names = dict((tids[t.name], t.name) for t in threads)
    names[tids["default"]] = default.name
    names[pre.tid] = pre.name
    for name, tid in pool_tids.items():
        names[tid] = name
    names[native_id()] = threading.current_thread().name
    truth = {"phase": "ready", "names": dict((str(k), v) for k, v in names.items()),
             "raw_tid": raw["tid"], "main_tid": native_id(), "renamed_tid": tids["loader-2"]}
    write_truth(args.truth, truth)

    end = time.monotonic() + args.duration
    renamed = False
    while time.monotonic() < end:
        if not renamed and args.rename_flag and os.path.exists(args.rename_flag):
            threads[1].name = "loader-2 (renamed)"
            truth["names"][str(tids["loader-2"])] = threads[1].name
            truth["phase"] = "renamed"
            write_truth(args.truth, truth)
            renamed = True
        time.sleep(0.01)
    STOP.set()
    for f in futures:
        f.result()
    pool.shutdown()


if __name__ == "__main__":
    main()
