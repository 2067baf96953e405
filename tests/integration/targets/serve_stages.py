"""A small HTTP server with crux agent stages, for crux record --load.

Each GET runs parse (sleep 2 ms), model (10 ms of pure-Python work) and
serialize (JSON) inside crux.request(), timing each stage itself; every
request appends one JSON line with those durations to the truth file (JSONL)
before answering. Runs until SIGTERM or SIGINT.
"""
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import crux

from _harness import parse_args

MODEL_S = 0.010


def model():
    end = time.perf_counter() + MODEL_S
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


class Handler(BaseHTTPRequestHandler):
    truth = None

    def do_GET(self):
        times = {}
        with crux.request():
            t = time.perf_counter()
            with crux.stage("parse"):
                time.sleep(0.002)
            times["parse"] = time.perf_counter() - t
            t = time.perf_counter()
            with crux.stage("model"):
                n = model()
            times["model"] = time.perf_counter() - t
            t = time.perf_counter()
            with crux.stage("serialize"):
                body = json.dumps({"n": n}).encode()
            times["serialize"] = time.perf_counter() - t
        with open(self.truth, "a") as f:
            f.write(json.dumps(times) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--port", type=int, required=True))
    Handler.truth = args.truth
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
