"""A small streaming completion server with crux agent stages, for crux record --load.

POST /v1/completions with an OpenAI-style body: the stage "prefill" sleeps 5 ms + 0.2 ms
per prompt word, then the stage "decode" streams max_tokens server-sent events 8 ms apart
(the first at once: it ends the prefill), then a usage event and [DONE]. Each request
appends its own stage times (seconds) to the truth file (JSONL). Runs until SIGTERM.
"""
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import crux

from _harness import parse_args

FIRST_S, PER_WORD_S, GAP_S = 0.005, 0.0002, 0.008


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # as uvicorn and vLLM do: with Nagle's algorithm the first token waits behind the
    # headers for the client's delayed ACK (~40 ms), and lands after the prefill ends
    disable_nagle_algorithm = True
    truth = None

    def event(self, data):
        chunk = ("data: %s\n\n" % data).encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.flush()

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        words = len(req["prompt"].split())
        n_out = int(req.get("max_tokens", 8))
        times = {}
        with crux.request():
            t = time.perf_counter()
            with crux.stage("prefill"):
                time.sleep(FIRST_S + PER_WORD_S * words)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            times["prefill"] = time.perf_counter() - t
            t = time.perf_counter()
            with crux.stage("decode"):
                for k in range(n_out):
                    if k:
                        time.sleep(GAP_S)
                    self.event(json.dumps({"choices": [{"index": 0, "text": " t%d" % k}]}))
                usage = {"prompt_tokens": words, "completion_tokens": n_out}
                self.event(json.dumps({"choices": [], "usage": usage}))
                self.event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            times["decode"] = time.perf_counter() - t
        with open(self.truth, "a") as f:
            f.write(json.dumps(times) + "\n")

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
