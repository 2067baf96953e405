#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What crux's time categories cost a *Python* thread: bench/perf_tick.c's measurement with
the interpreter as the workload. Opens the perf event crux opens on every sampled thread
(software task-clock, IP/TID/TIME samples into a ring; src/target/perf.c) on this thread,
then times a fixed amount of pure-Python work (cpu.py's unit) with the event enabled and
disabled, alternating which goes first, draining the ring between chunks as a crux round
would. Periods: 2.5 ms, 250 us and 25 us (crux's first design at 100 Hz, 1 kHz, 10 kHz:
a quarter of the sampling interval) and 1 ms (1 kHz since 6c4d0bd: the interval).

    python3 bench/perf_tick_py.py [--alternations 30] [--loop-ms 40]

Prints per period the median [min..max] of (thread CPU with / without) and of wall time,
and the extra CPU per perf sample; writes bench/out/perf_tick_py.json."""
import argparse
import ctypes
import fcntl
import mmap
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "workloads"))
import common as C  # noqa: E402
from cpu import unit  # noqa: E402

SYS_PERF_EVENT_OPEN = 298  # x86-64
PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK = 1, 1
SAMPLE_IP_TID_TIME = 1 | 2 | 4
IOC_ENABLE, IOC_DISABLE = 0x2400, 0x2401
PAGE = mmap.PAGESIZE
RECORD = 8 + 8 + 8 + 8  # header, ip, pid/tid, time


def open_event(period_ns):
    attr = bytearray(128)
    struct.pack_into("IIQQQQQI", attr, 0, PERF_TYPE_SOFTWARE, len(attr),
                     PERF_COUNT_SW_TASK_CLOCK, period_ns, SAMPLE_IP_TID_TIME, 0,
                     (1 << 0) | (1 << 6),  # disabled, exclude_hv
                     1 << 30)  # wakeup_events: never wake anyone
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(SYS_PERF_EVENT_OPEN, buf, 0, -1, -1, 8)  # PERF_FLAG_FD_CLOEXEC
    if fd < 0:
        sys.exit("perf_event_open: %s" % os.strerror(ctypes.get_errno()))
    ring = mmap.mmap(fd, 3 * PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    return fd, ring


def drain(ring):
    """Consumes the ring (data_tail = data_head); returns the bytes consumed."""
    head = struct.unpack_from("Q", ring, 1024)[0]
    tail = struct.unpack_from("Q", ring, 1032)[0]
    struct.pack_into("Q", ring, 1032, head)
    return head - tail


def work(units, chunks, ring):
    got = 0
    per = max(1, units // chunks)
    for c in range(chunks):
        for k in range(per):
            unit(k)
        if ring is not None:
            got += drain(ring)
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alternations", type=int, default=30)
    ap.add_argument("--loop-ms", type=float, default=40.0)
    a = ap.parse_args()
    units = 10
    while True:  # calibrate the loop to --loop-ms of thread CPU
        t0 = time.thread_time()
        work(units, 1, None)
        dt = time.thread_time() - t0
        if dt > 0.01:
            units = max(20, int(units * a.loop_ms / 1000.0 / dt))
            break
        units *= 2
    result = {"machine": C.machine(), "python": sys.version.split()[0], "units": units,
              "loop_ms": a.loop_ms, "alternations": a.alternations, "periods": []}
    rows = []
    for period in (2500000, 1000000, 250000, 25000):
        fd, ring = open_event(period)
        cpu_r, wall_r, dcpu = [], [], []
        samples = 0
        for i in range(a.alternations):
            t = {}
            for k in range(2):
                on = (k + i) % 2
                if on:
                    fcntl.ioctl(fd, IOC_ENABLE, 0)
                c0, w0 = time.thread_time(), time.perf_counter()
                got = work(units, 20, ring if on else None)
                t[on] = (time.thread_time() - c0, time.perf_counter() - w0)
                if on:
                    fcntl.ioctl(fd, IOC_DISABLE, 0)
                    samples += (got + drain(ring)) / RECORD
            cpu_r.append(t[1][0] / t[0][0])
            wall_r.append(t[1][1] / t[0][1])
            dcpu.append(t[1][0] - t[0][0])
        ring.close()
        os.close(fd)
        per_loop = samples / a.alternations
        entry = {"period_us": period / 1e3, "samples_per_loop": per_loop,
                 "cpu_ratio": C.summarize(cpu_r), "wall_ratio": C.summarize(wall_r),
                 "cpu_us_per_sample": statistics.median(dcpu) / per_loop * 1e6
                 if per_loop else None}
        result["periods"].append(entry)
        rows.append(["%.0f us" % entry["period_us"], "%.1f" % per_loop,
                     C.fmt_spread(entry["cpu_ratio"]), C.fmt_spread(entry["wall_ratio"]),
                     "%.1f" % entry["cpu_us_per_sample"] if per_loop else "-"])
        C.log("  period %.0f us done" % entry["period_us"])
    print("perf task-clock event on a Python thread (%s), %d alternations of %.0f ms"
          % (result["python"], a.alternations, a.loop_ms))
    print(C.table(["period", "samples/loop", "thread CPU on/off", "wall on/off",
                   "extra CPU us per sample"], rows))
    print("wrote %s" % C.write_json("perf_tick_py.json", result))


if __name__ == "__main__":
    main()
