"""A small HTTP server for test_alloc_attach.py, written the way such servers are: the
standard library's http.server, a handler that builds its answer from a list of strings, and a
background worker thread that keeps allocating (a busy process to attach to).

GET /N answers a body that depends only on N (its digest on the first line), so answers before,
during and after an attach can be compared byte for byte. Writes the port and the allocating
lines to the truth file, then serves (--busy adds the worker thread).
"""
import hashlib
import http.server
import threading
import time

from _harness import parse_args, write_truth


def render(n):
    rows = ["%d:%d:%s" % (n, i, "x" * 48) for i in range(3000)]  # ALLOC
    text = "\n".join(rows)
    return (hashlib.sha256(text.encode()).hexdigest() + "\n" + text[:200] + "\n").encode()


def worker():
    keep = []
    while True:
        keep.append(bytearray(2048))  # WORKER
        if len(keep) > 500:
            keep.clear()
            time.sleep(0.001)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            n = int(self.path.strip("/") or "0")
        except ValueError:
            n = 0
        body = render(n)
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
    args = parse_args(__doc__, lambda p: p.add_argument("--busy", action="store_true"))
    if args.busy:
        threading.Thread(target=worker, daemon=True).start()
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    truth = lines_of("ALLOC", "WORKER")
    truth["port"] = server.server_address[1]
    write_truth(args.truth, truth)
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
