"""One function per kind of time, for comparing time categories between profilers.

py_loop (python), native_hash (native: sha256 in OpenSSL), np_matmul (native:
BLAS, when numpy imports), do_sleep and do_recv (system). Prints a JSON line
with elapsed_s and cpu_s like the other workloads.
"""
import hashlib
import json
import socket
import sys
import threading
import time

BUF = b"x" * (1 << 20)


def py_loop(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(1000):
            n += i * i % 7
    return n


def native_hash(seconds):
    end = time.perf_counter() + seconds
    h = hashlib.sha256()
    while time.perf_counter() < end:
        h.update(BUF)
    return h.digest()


def np_matmul(seconds):
    try:
        import numpy as np
    except ImportError:
        return None
    a = np.random.rand(400, 400)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = (a @ a) / 400.0
    return a


def do_sleep(seconds):
    time.sleep(seconds)


def do_recv(seconds):
    a, b = socket.socketpair()
    timer = threading.Timer(seconds, b.send, args=(b"x",))
    timer.start()
    data = a.recv(1)
    timer.join()
    return data


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    t0, c0 = time.perf_counter(), time.process_time()
    py_loop(1.0 * scale)
    native_hash(1.0 * scale)
    np_matmul(1.0 * scale)
    do_sleep(0.5 * scale)
    do_recv(0.5 * scale)
    print(json.dumps({"elapsed_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}))


if __name__ == "__main__":
    main()
