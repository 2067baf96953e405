#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks src/cpython/offsets_table.c against live interpreters (stdlib only).

Each installed pyenv CPython 3.8-3.13 (and Debian's /usr/bin/python3.11) reads its own memory
with ctypes, following the generated offsets: _PyRuntime -> interpreter -> thread state ->
current frame -> code object -> name string, the GIL holder, and the thread ids. A wrong
offset shows up as a mismatch or a crash of that child.

Usage: tools/check_offsets_live.py
"""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "src", "cpython", "offsets_table.c")
PYENV_VERSIONS = ["3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]
DEBIAN_PYTHON = "/usr/bin/python3.11"

PROBE = r"""
import ctypes, json, sys, threading
o = json.loads(sys.argv[1])
m = sys.version_info.minor
ptr = lambda a: ctypes.c_void_p.from_address(a).value or 0
i32 = lambda a: ctypes.c_int.from_address(a).value
u32 = lambda a: ctypes.c_uint32.from_address(a).value
u64 = lambda a: ctypes.c_uint64.from_address(a).value
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

def read_str(a):
    state = u32(a + o["str_state"])
    kind, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
    n = ctypes.c_ssize_t.from_address(a + o["str_length"]).value
    check(kind == 1 and compact and ascii_, "name string is compact ASCII")
    return ctypes.string_at(a + o["str_ascii_size"], n).decode()

def code_of_frame():
    # Only C calls in here (no helpers): a Python call would become the current frame.
    P = ctypes.c_void_p.from_address
    ts = ts0
    if m <= 10:
        f = P(ts + o["ts_frame"]).value
        return P(f + o["fo_code"]).value, P(P(f + o["fo_back"]).value + o["fo_code"]).value
    if m <= 12:
        f = P(P(ts + o["ts_frame"]).value + o["cf_current_frame"]).value
    else:
        f = P(ts + o["ts_frame"]).value
    return P(f + o["if_code"]).value, P(P(f + o["if_previous"]).value + o["if_code"]).value

def probe_function():
    return code_of_frame()

rt = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
interp = ptr(rt + o["rt_interp_head"])
check(interp == ptr(rt + o["rt_interp_main"]), "interpreters.head == main")
check(u64(interp + o["is_id"]) == 0, "main interpreter id 0")
check(ptr(interp + o["is_next"]) == 0, "one interpreter")
check(ptr(rt + o["rt_finalizing"]) == 0, "not finalizing")
ts0 = ptr(interp + o["is_tstate_head"])
check(ptr(ts0 + o["ts_interp"]) == interp, "tstate->interp")
check(ptr(ts0 + o["ts_next"]) == 0, "one thread")
check(ctypes.c_ulong.from_address(ts0 + o["ts_thread_id"]).value == threading.get_ident(),
      "thread_id == get_ident()")
if o["ts_native_thread_id"] >= 0:
    check(ctypes.c_ulong.from_address(ts0 + o["ts_native_thread_id"]).value
          == threading.get_native_id(), "native_thread_id")
# The current frame runs code_of_frame, its caller probe_function (both read while live).
code, back_code = probe_function()
fn = code_of_frame
check(ctypes.c_void_p.from_address(code + o["ob_type"]).value == id(type(fn.__code__)),
      "frame code is a code object")
check(code == id(fn.__code__), "current frame runs code_of_frame")
check(back_code == id(probe_function.__code__), "caller frame runs probe_function")
check(read_str(ptr(code + o["co_name"])) == "code_of_frame", "co_name")
check(read_str(ptr(code + o["co_filename"])) == "<string>", "co_filename")
check(i32(code + o["co_firstlineno"]) == fn.__code__.co_firstlineno, "co_firstlineno")
if o["co_qualname"] >= 0:
    check(read_str(ptr(code + o["co_qualname"])) == "code_of_frame", "co_qualname")
lt = ptr(code + o["co_linetable"])
table = fn.__code__.co_lnotab if m <= 9 else fn.__code__.co_linetable
check(lt == id(table), "line table pointer")
check(ctypes.string_at(lt + o["bytes_sval"], len(table)) == table, "bytes_sval")
check(ctypes.c_ssize_t.from_address(lt + o["var_size"]).value == len(table), "ob_size")
if o["co_code"] >= 0:
    check(ptr(code + o["co_code"]) == id(fn.__code__.co_code), "co_code")
else:
    n = ctypes.c_ssize_t.from_address(code + o["var_size"]).value
    check(n * 2 == len(fn.__code__.co_code), "code units")
if o["ts_datastack_chunk"] >= 0:
    chunk = ptr(ts0 + o["ts_datastack_chunk"])
    top, limit = ptr(ts0 + o["ts_datastack_top"]), ptr(ts0 + o["ts_datastack_limit"])
    size = u64(chunk + o["ck_size"])
    check(chunk + o["ck_data"] <= top <= limit == chunk + size, "data stack chunk")
if o["rt_tstate_current"] >= 0:
    check(ptr(rt + o["rt_tstate_current"]) == ts0, "gilstate.tstate_current")
    gil = rt + o["rt_gil"]
else:
    gil = ptr(interp + o["is_gil_ptr"])
check(i32(gil + o["gil_locked"]) == 1, "gil locked")
check(ptr(gil + o["gil_last_holder"]) == ts0, "gil last_holder")
if o["ts_status"] >= 0:
    check(u32(ts0 + o["ts_status"]) >> o["ts_status_gil_bit"] & 1, "_status GIL bit set")
# A second thread, blocked without the GIL, becomes the head (newest first).
started, stop = threading.Event(), threading.Event()
t = threading.Thread(target=lambda: (started.set(), stop.wait()))
t.start()
started.wait()
ts1 = ptr(interp + o["is_tstate_head"])
check(ptr(ts1 + o["ts_next"]) == ts0, "new thread state first, then main")
check(ctypes.c_ulong.from_address(ts1 + o["ts_thread_id"]).value == t.ident, "thread 2 id")
check(ptr(ts1 + o["ts_interp"]) == interp, "thread 2 interp")
if o["ts_status"] >= 0:
    check(not u32(ts1 + o["ts_status"]) >> o["ts_status_gil_bit"] & 1, "_status GIL bit clear")
    check(u32(ts0 + o["ts_status"]) >> o["ts_status_gil_bit"] & 1, "_status GIL bit set")
    check(u32(ts1 + o["ts_status"]) != 0, "thread 2 _status has other bits")
stop.set()
t.join()
print(json.dumps({"version": sys.version.split()[0], "problems": problems}))
"""


def tables():
    text = open(TABLE).read()
    out = {}
    for minor, body in re.findall(r"py_3_(\d+) = \{(.*?)\};", text, re.S):
        out[int(minor)] = {k: int(v) for k, v in re.findall(r"\.(\w+) = (-?\d+)", body)}
    return out


def main():
    t = tables()
    pythons = []
    for ver in PYENV_VERSIONS:
        prefix = subprocess.run(["pyenv", "prefix", ver], capture_output=True, text=True)
        minor = ver.split(".")[1]
        pythons.append((int(minor), os.path.join(prefix.stdout.strip(), "bin", "python3." + minor)))
    if os.path.exists(DEBIAN_PYTHON):
        pythons.append((11, DEBIAN_PYTHON))
    bad = 0
    for minor, exe in pythons:
        r = subprocess.run([exe, "-c", PROBE, json.dumps(t[minor])], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print(f"FAIL {exe}: exit {r.returncode}\n{r.stderr}")
            bad += 1
            continue
        res = json.loads(r.stdout)
        status = "ok" if not res["problems"] else "FAIL " + "; ".join(res["problems"])
        bad += bool(res["problems"])
        print(f"{res['version']:8} {exe}: {status}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
