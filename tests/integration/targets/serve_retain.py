"""A small HTTP server whose handler may leak a known number of bytes per request.

Each GET runs inside crux.request(): it builds a temporary of --temp-kb KiB (freed inside the
request) and, with --leak-kb N, appends N KiB to a global list (kept until the process ends).
The truth file gives the line numbers of both and the counts; each request appends one line.
Runs until SIGTERM or SIGINT.
"""
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

import crux

from _harness import parse_args, write_truth

KEPT = []


def lines_of(tags):
    found = {}
    with open(__file__, encoding="utf-8") as f:
        for no, text in enumerate(f, 1):
            for tag in tags:
                if text.rstrip().endswith("# " + tag):
                    found[tag] = no
    return found


class Handler(BaseHTTPRequestHandler):
    leak = 0
    temp = 0

    def do_GET(self):
        with crux.request():
            tmp = bytearray(self.temp * 1024)  # TEMP
            n = len(tmp)
            del tmp
            if self.leak:
                KEPT.append(bytearray(self.leak * 1024))  # LEAK
            body = json.dumps({"n": n, "kept": len(KEPT)}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    def more(p):
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--leak-kb", type=int, default=0)
        p.add_argument("--temp-kb", type=int, default=48)

    args = parse_args(__doc__, more)
    Handler.leak = args.leak_kb
    Handler.temp = args.temp_kb
    write_truth(args.truth, {"lines": lines_of(["TEMP", "LEAK"]), "leak_kb": args.leak_kb,
                             "temp_kb": args.temp_kb})
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
