"""A Flask server (Debian's python3-flask) whose handler takes a known time.

GET /work sleeps 10 ms then does 2 ms of Python work; each request appends its own
service time (seconds, measured in the handler) to the truth file (one number per line).
Threaded development server on 127.0.0.1:--port; runs until SIGTERM.
"""
import signal
import sys
import time

from flask import Flask

from _harness import parse_args

app = Flask(__name__)
TRUTH = None


@app.route("/work")
def work():
    t0 = time.perf_counter()
    time.sleep(0.010)
    end = time.perf_counter() + 0.002
    n = 0
    while time.perf_counter() < end:
        n += 1
    took = time.perf_counter() - t0
    with open(TRUTH, "a") as f:
        f.write("%.9f\n" % took)
    return {"n": n}


def main():
    global TRUTH
    args = parse_args(__doc__, lambda p: p.add_argument("--port", type=int, required=True))
    TRUTH = args.truth
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    app.run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
