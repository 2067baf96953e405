"""An HTTP server with a worker that allocates natively, for test_alloc_attach.py: the worker
makes 4 MiB numpy arrays (numpy.empty, then filled) (where numpy is installed: its C code calls malloc through its own
GOT) or, without numpy, 4 MiB anonymous mmap.mmap objects (the mmap module calls mmap), one
every 20 ms, at a known line.

GET /N answers a body that depends only on N; GET /count the bytes the worker allocated so
far; GET /allocators the PyMem allocator functions of the MEM and OBJ domains (ctypes
PyMem_GetAllocator), so that a test can see them replaced during a recording and back after.
"""
import ctypes
import hashlib
import http.server
import json
import mmap
import threading
import time

from _harness import parse_args, write_truth

try:
    import numpy
except ImportError:
    numpy = None

BLOCK = 4 << 20
done = [0]


def render(n):
    rows = ["%d:%d:%s" % (n, i, "y" * 40) for i in range(2000)]
    text = "\n".join(rows)
    return (hashlib.sha256(text.encode()).hexdigest() + "\n" + text[:200] + "\n").encode()


def worker_numpy():
    while True:
        a = numpy.empty(BLOCK // 8)  # NUMPY
        a.fill(1.0)
        done[0] += a.nbytes
        del a
        time.sleep(0.02)


def worker_mmap():
    while True:
        m = mmap.mmap(-1, BLOCK)  # MMAP
        m[0:1] = b"x"
        done[0] += BLOCK
        m.close()
        time.sleep(0.02)


class Allocator(ctypes.Structure):
    _fields_ = [(n, ctypes.c_void_p) for n in ("ctx", "malloc", "calloc", "realloc", "free")]


def allocators():
    get = ctypes.pythonapi.PyMem_GetAllocator
    get.argtypes = [ctypes.c_int, ctypes.POINTER(Allocator)]
    get.restype = None
    out = {}
    for name, dom in (("mem", 1), ("obj", 2)):
        a = Allocator()
        get(dom, ctypes.byref(a))
        out[name] = [a.ctx or 0, a.malloc or 0, a.calloc or 0, a.realloc or 0, a.free or 0]
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.strip("/")
        if path == "count":
            body = str(done[0]).encode()
        elif path == "allocators":
            body = json.dumps(allocators()).encode()
        else:
            try:
                body = render(int(path or "0"))
            except ValueError:
                body = render(0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def lines_of(*marks):
    with open(__file__) as f:
        text = f.read().splitlines()
    return dict((m, i + 1) for m in marks for i, t in enumerate(text) if t.endswith("# " + m))


def main():
    args = parse_args(__doc__)
    threading.Thread(target=worker_numpy if numpy else worker_mmap, daemon=True).start()
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    truth = lines_of("NUMPY", "MMAP")
    truth["port"] = server.server_address[1]
    truth["numpy"] = numpy is not None
    write_truth(args.truth, truth)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
