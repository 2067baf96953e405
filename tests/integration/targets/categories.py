"""Known time categories, one function per kind of time.

py_loop runs bytecode (python), native_hash stays inside OpenSSL's sha256 with
the GIL released (native), do_sleep sleeps and do_recv blocks in recv() on a
socket whose peer answers late (system), and two threads running spin at once
take turns on the GIL (each waits for it about half the time: gil). Each phase
runs for a known time; the truth file has, per spin thread, the share of its
wall time it spent on CPU (time.thread_time), so 1 - that share is its GIL wait.
"""
import hashlib
import socket
import threading
import time

from _harness import parse_args, write_truth

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


def do_sleep(seconds):
    time.sleep(seconds)


def do_recv(seconds):
    a, b = socket.socketpair()
    timer = threading.Timer(seconds, b.send, args=(b"x",))
    timer.start()
    data = a.recv(1)
    timer.join()
    a.close()
    b.close()
    return data


def spin(seconds, out, key):
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    end = wall0 + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(1000):
            n += i * i % 7
    out[key] = (time.thread_time() - cpu0) / (time.perf_counter() - wall0)


def main():
    args = parse_args(__doc__, duration=1.0)
    d = args.duration
    py_loop(d)
    native_hash(d)
    do_sleep(d * 0.6)
    do_recv(d * 0.6)
    shares = {}
    threads = [threading.Thread(target=spin, args=(d * 1.2, shares, k)) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    write_truth(args.truth, {"spin_cpu_share": shares})


if __name__ == "__main__":
    main()
