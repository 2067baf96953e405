"""Shared plumbing for crux integration targets: arguments and the truth file.

Every target measures what a correct profiler must report (its own wall-time
shares, thread ids, line numbers) and writes it as JSON to the path given with
--truth, so that tests compare crux against the target's own measurement.
Runs on CPython 3.8 and later; keep the syntax that old.
"""
import argparse
import json
import os
import platform
import sys
import threading


def parse_args(description, add_arguments=None, duration=2.0):
    """Parses --truth PATH, --duration SEC and whatever add_arguments adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--truth", required=True, help="write the measured truth JSON here")
    parser.add_argument("--duration", type=float, default=duration,
                        help="seconds of work (default %(default)s)")
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args()


def native_id():
    """The kernel's id of the calling thread (what /proc/PID/task lists)."""
    return threading.get_native_id()


def write_truth(path, data):
    """Writes data plus pid and version atomically, so a reader never sees half a file."""
    out = {
        "pid": os.getpid(),
        "python_version": platform.python_version(),
        "version_info": list(sys.version_info[:3]),
        "executable": sys.executable,
    }
    out.update(data)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1, sort_keys=True)
    os.replace(tmp, path)
