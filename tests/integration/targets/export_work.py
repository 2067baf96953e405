"""Known functions for the pprof and pstats exports: two threads and, with crux's agent, stages.

The main thread serves requests in a loop: handle_request calls tokenize_text (Python
bytecode, about 3/4 of the request) then score_batch (sha256 inside one C call, GIL
released, about 1/4). A second thread, bg_worker, sleeps in background_poll. When the
crux agent is importable (PYTHONPATH), the target waits until a recorder attaches, then
runs tokenize_text in the stage "tokenize" and score_batch in the stage "score".
Truth: the main and background threads' native ids.
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


def background_poll(stop, tids):
    tids["bg"] = native_id()
    while not stop.is_set():
        time.sleep(0.01)


def main():
    args = parse_args(__doc__.splitlines()[0], duration=1.5)
    if crux is not None:
        deadline = time.monotonic() + 10
        while not crux.attached() and time.monotonic() < deadline:
            time.sleep(0.005)
    stop = threading.Event()
    tids = {"main": native_id()}
    bg = threading.Thread(target=background_poll, args=(stop, tids), name="bg_worker")
    bg.start()
    end = time.perf_counter() + args.duration
    requests = 0
    while time.perf_counter() < end:
        handle_request()
        requests += 1
    stop.set()
    bg.join()
    write_truth(args.truth, {"tids": tids, "requests": requests,
                             "staged": crux is not None and crux.attached()})


if __name__ == "__main__":
    main()
