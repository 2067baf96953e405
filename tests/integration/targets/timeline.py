"""A small batch service on two threads, for the timeline formats (gecko, Chrome trace).

The main thread handles batches of text: `tokenize` counts words in pure Python
(about 70% of a batch), `render` writes the counts with json.dumps, and a
function with a hostile name (quotes, a backslash, a newline, `</script>`, a
lone surrogate; renamed with code.replace) spins briefly. A thread named
"flusher" compresses a log buffer with zlib in `flush` and naps between
flushes. The truth file gives both threads' native ids, the hot function, and
the hostile name as crux shows it: the lone surrogate cannot be UTF-8, so it
reads as U+FFFD, and the reader writes control characters as '?'.
"""
import json
import sys
import threading
import time
import types
import zlib

from _harness import native_id, parse_args, write_truth

HOSTILE = 'say "hi"\\ </script>\nnext \ud800 line'
WORDS = ("the quick brown fox jumps over the lazy dog and keeps running " * 40).split()

SPIN = """
def placeholder(slice_s):
    end = perf_counter() + slice_s
    n = 0
    while perf_counter() < end:
        n += 1
    return n
"""


def make_hostile():
    namespace = {"perf_counter": time.perf_counter}
    exec(compile(SPIN, "hostile.py", "exec"), namespace)
    code = namespace["placeholder"].__code__
    if sys.version_info >= (3, 11):
        code = code.replace(co_name=HOSTILE, co_qualname=HOSTILE)
    else:
        code = code.replace(co_name=HOSTILE)
    return types.FunctionType(code, namespace, HOSTILE)


def tokenize(slice_s):
    end = time.perf_counter() + slice_s
    counts = {}
    while time.perf_counter() < end:
        for word in WORDS:
            key = word.lower().strip(".,")
            counts[key] = counts.get(key, 0) + 1
    return counts


def render(counts, slice_s):
    end = time.perf_counter() + slice_s
    out = ""
    while time.perf_counter() < end:
        out = json.dumps({"counts": counts, "n": len(out)}, sort_keys=True)
    return out


def flush(buf):
    return len(zlib.compress(buf, 6))


class Flusher(object):
    def __init__(self, end):
        self.end = end
        self.tid = None
        self.started = threading.Event()

    def run(self):
        self.tid = native_id()
        self.started.set()
        buf = b"log line with some repeated text 0123456789\n" * 2000
        while time.perf_counter() < self.end:
            flush(buf)
            time.sleep(0.01)


def main():
    args = parse_args(__doc__.splitlines()[0], duration=1.5)
    end = time.perf_counter() + args.duration
    flusher = Flusher(end)
    thread = threading.Thread(target=flusher.run, name="flusher")
    thread.start()
    flusher.started.wait()
    hostile = make_hostile()
    while time.perf_counter() < end:
        counts = tokenize(0.014)
        render(counts, 0.003)
        hostile(0.003)
    thread.join()
    write_truth(args.truth, {
        "main_tid": native_id(),
        "flusher_tid": flusher.tid,
        "hot": "tokenize",
        "hostile": HOSTILE.replace("\ud800", "\ufffd").replace("\n", "?"),
    })


if __name__ == "__main__":
    main()
