"""Ten threads named with `threading`, each in its own function, as a user's script has them.

The shape of a small ingestion service: four workers on the CPU (tokenize, checksum,
resize, compress), six that mostly wait (poll, heartbeat, flush, watch, gc, metrics).
Every thread loops until the process ends; the main thread sleeps in <module>. The script
takes no arguments and writes nothing: test_pyspy_parity.py runs it exactly as a py-spy
user would (`python3 script.py`) and knows its names and functions from this file.
"""
import threading
import time

STOP = threading.Event()


def tokenize_batches():
    words = 0
    while not STOP.is_set():
        words += len("the quick brown fox jumps over the lazy dog".split())


def checksum_shards():
    acc = 0
    while not STOP.is_set():
        for i in range(500):
            acc = (acc * 31 + i) & 0xFFFFFFFF


def resize_images():
    px = 0
    while not STOP.is_set():
        px += sum(range(300))


def compress_logs():
    out = b""
    while not STOP.is_set():
        out = bytes(reversed(b"GET /index.html 200 512")) or out


def poll_queue():
    while not STOP.is_set():
        time.sleep(0.02)


def send_heartbeat():
    while not STOP.wait(0.05):
        pass


def flush_cache():
    while not STOP.is_set():
        time.sleep(0.03)


def watch_config():
    while not STOP.is_set():
        time.sleep(0.04)


def collect_garbage():
    while not STOP.is_set():
        time.sleep(0.025)


def export_metrics():
    while not STOP.is_set():
        time.sleep(0.035)


WORKERS = [
    ("tokenizer", tokenize_batches),
    ("checksummer", checksum_shards),
    ("image-resizer", resize_images),
    ("log-compressor", compress_logs),
    ("queue-poller", poll_queue),
    ("heartbeat", send_heartbeat),
    ("cache-flusher", flush_cache),
    ("config-watcher", watch_config),
    ("gc-sweeper", collect_garbage),
    ("metrics-exporter", export_metrics),
]


def main():
    threads = [threading.Thread(target=fn, name=name, daemon=True) for name, fn in WORKERS]
    for t in threads:
        t.start()
    end = time.monotonic() + 60  # a bound, should nobody end the script
    while time.monotonic() < end:
        time.sleep(0.05)
    STOP.set()


if __name__ == "__main__":
    main()
