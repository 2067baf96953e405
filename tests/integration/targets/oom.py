"""Out-of-memory target for test_alloc_oom.py: a cache of 4 MiB records that grows until the
cgroup's memory limit kills the process. The truth file, written first, names the line."""
import json
import sys
import time


def grow(cache):
    while True:
        cache.append(b"\x01" * (4 << 20))  # GROW
        time.sleep(0.004)


def main():
    with open(__file__, encoding="utf-8") as f:
        line = next(no for no, text in enumerate(f, 1) if text.rstrip().endswith("# GROW"))
    with open(sys.argv[sys.argv.index("--truth") + 1], "w", encoding="utf-8") as f:
        json.dump({"GROW": line}, f)
    grow([])


if __name__ == "__main__":
    main()
