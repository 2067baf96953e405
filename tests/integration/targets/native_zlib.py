"""Native frames under Python frames: a loop compressing a buffer with zlib.

main -> outer_native -> compress_loop, which spends nearly all its time in
zlib.compress, i.e. in deflate (libz.so.1) called by the zlib module. With
--native a dump must show the libz frames leafward of compress_loop and the
Python frames intact (--depth N puts N nest() frames between them, a stack that
spans several data-stack chunks on 3.11+). A second mode (--callback) sorts with libc's qsort
through ctypes with a Python comparison function, so that Python runs inside
native code inside Python: sort_outer -> qsort (libc) -> py_compare.
The calls are marked with "# LINE_COMPRESS" and "# LINE_QSORT" for the tests.
"""
import ctypes
import ctypes.util
import time
import zlib

from _harness import native_id, parse_args, write_truth

def compress_loop(data, end):
    n = 0
    while time.perf_counter() < end:
        n += len(zlib.compress(data, 9))  # LINE_COMPRESS
    return n


def nest(n, data, end):
    if n > 0:
        return nest(n - 1, data, end)
    return compress_loop(data, end)


def outer_native(data, end, depth):
    if depth:
        return nest(depth - 1, data, end)
    return compress_loop(data, end)


CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def py_compare(a, b):
    x = 0
    for i in range(20):
        x += i
    return a[0] - b[0]


def sort_loop(libc, end):
    arr = (ctypes.c_int * 2000)(*[(i * 7919) % 2000 for i in range(2000)])
    while time.perf_counter() < end:
        libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), CMP(py_compare))  # LINE_QSORT
        arr = (ctypes.c_int * 2000)(*[(i * 7919) % 2000 for i in range(2000)])


def sort_outer(libc, end):
    sort_loop(libc, end)


def main():
    def more(p):
        p.add_argument("--callback", action="store_true")
        p.add_argument("--depth", type=int, default=0, help="nest() frames above compress_loop")

    args = parse_args(__doc__, more, duration=30.0)
    # Text that compresses slowly at level 9: words from a small vocabulary in a
    # pseudo-random order (deterministic).
    words = [b"tensor", b"batch", b"token", b"layer", b"gradient", b"queue", b"model", b"shard"]
    seed = 12345
    parts = []
    for _ in range(200000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        parts.append(words[seed % len(words)])
    data = b" ".join(parts)
    end = time.perf_counter() + args.duration
    write_truth(args.truth, {"tid": native_id(), "phase": "running"})
    if args.callback:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        sort_outer(libc, end)
    else:
        outer_native(data, end, args.depth)


if __name__ == "__main__":
    main()
