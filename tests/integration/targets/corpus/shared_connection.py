"""Four worker threads share one keep-alive connection to an inventory service, guarded by
a lock (http.client connections are not thread-safe).

Each call takes 15 ms on the service; while one worker holds the connection the other
three wait for the lock. Most of the threads' time is waiting on that lock: queueing.
"""
import http.client
import json
import threading

import _backend
from _timing import Clock, parse_args

WORKERS = 4


def worker(conn, lock, clock, duration, done):
    calls = 0
    while clock.elapsed() < duration:
        with clock("host"):
            body = json.dumps({"skus": ["sku-%d" % i for i in range(calls, calls + 20)]})
        with clock("queue"):
            lock.acquire()
        try:
            with clock("io"):
                conn.request("POST", "/reserve?size=400", body.encode())
                answer = conn.getresponse().read()
        finally:
            lock.release()
        with clock("host"):
            json.loads(answer)
        calls += 1
    done.append(calls)


def main():
    args = parse_args(__doc__)
    server, port = _backend.start(delay_ms=15)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lock = threading.Lock()
    clock = Clock()
    done = []
    threads = [threading.Thread(target=worker, args=(conn, lock, clock, args.duration, done))
               for _ in range(WORKERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        conn.close()
        server.kill()
    clock.write(args.truth, expect="queue", calls=sum(done))


if __name__ == "__main__":
    main()
