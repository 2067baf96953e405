"""A long-running service for crux serve: known functions, named threads, stages, churn.

The main thread serves requests in a loop: handle_request calls tokenize_text (Python
bytecode, about 3/4 of a request) then score_batch (sha256 in one C call, GIL released,
about 1/4), in the stages "tokenize" and "score" when crux's agent is importable (it then
waits up to 10 s for a sampler to attach first). A thread named "encoder" runs
encode_forever. With --churn a thread named "churner" compiles and calls a new function
(churn_N) every few milliseconds, so the stacks never stop changing. Truth (written once
the threads run): the native ids of the main, encoder and churner threads.
"""
import hashlib
import threading
import time

from _harness import native_id, parse_args, write_truth

try:
    import crux
except ImportError:
    crux = None

BUF = b"\x5a" * (1 << 16)


class _NoStage(object):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def stage(name):
    return crux.stage(name) if crux is not None else _NoStage()


def tokenize_text(slice_s):
    end = time.perf_counter() + slice_s
    n = 0
    while time.perf_counter() < end:
        for i in range(100):
            n += i * i
    return n


def score_batch(slice_s):
    end = time.perf_counter() + slice_s
    h = hashlib.sha256()
    while time.perf_counter() < end:
        h.update(BUF)
    return h.digest()


def handle_request():
    with stage("tokenize"):
        tokenize_text(0.015)
    with stage("score"):
        score_batch(0.005)


def encode_forever(tids):
    tids["encoder"] = native_id()
    while True:
        tokenize_text(0.01)
        time.sleep(0.01)


def churn_leaf():
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass


def churn_forever(tids):
    tids["churner"] = native_id()
    n = 0
    while True:
        n += 1
        space = {"churn_leaf": churn_leaf}
        exec("def churn_%d():\n    churn_leaf()\n" % n, space)
        space["churn_%d" % n]()


def main():
    def more(parser):
        parser.add_argument("--churn", action="store_true")
    args = parse_args(__doc__.splitlines()[0], more, duration=60.0)
    if crux is not None:
        deadline = time.monotonic() + 10
        while not crux.attached() and time.monotonic() < deadline:
            time.sleep(0.005)
    tids = {"main": native_id()}
    threading.Thread(target=encode_forever, args=(tids,), name="encoder", daemon=True).start()
    if args.churn:
        threading.Thread(target=churn_forever, args=(tids,), name="churner",
                         daemon=True).start()
    while len(tids) < (3 if args.churn else 2):
        time.sleep(0.001)
    write_truth(args.truth, {"tids": tids})
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        handle_request()


if __name__ == "__main__":
    main()
