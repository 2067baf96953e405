"""A slow local HTTP service for the corpus's clients, run in a child process.

`python3 _backend.py --delay MS` serves on a free loopback port, prints the port on its
first line of output, and answers every GET or POST after MS milliseconds with a JSON
body (`?size=N`: about N bytes). HTTP/1.1 keep-alive; it exits with its parent. It stands
in for a database, a model server or a remote API: from the client's side, time spent
here is network wait. `start(delay_ms)` starts one and returns (Popen, port).
"""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    delay = 0.0
    bodies = {}

    def answer(self):
        query = parse_qs(urlparse(self.path).query)
        size = int(query.get("size", ["200"])[0])
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        time.sleep(self.delay)
        body = self.bodies.get(size)
        if body is None:  # made once per size: the service's own CPU stays small
            items = [{"id": i, "name": "item-%d" % i, "score": i * 0.25}
                     for i in range(max(size // 40, 1))]
            body = self.bodies[size] = json.dumps({"items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # clients that connect 20 at a time are not dropped


def start(delay_ms):
    """Starts the service in a child process; returns (Popen, port). Kill it when done."""
    proc = subprocess.Popen([sys.executable, __file__, "--delay", str(delay_ms)],
                            stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    return proc, port


def exit_with_parent(parent):
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def main():
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    Handler.delay = float(sys.argv[sys.argv.index("--delay") + 1]) / 1000.0
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
