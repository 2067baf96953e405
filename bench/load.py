#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""crux load against wrk and Locust, side by side in one run.

A. Throughput: requests/s one crux core sustains against bench/load_server.c (a one-thread
   epoll server pinned to the other core), next to wrk on the same server: wrk -t1 -c64
   (closed loop), crux --concurrency 64 (closed loop), libcurl's multi interface with 64
   transfers (bench/curl_client.c; skipped without libcurl4-openssl-dev), and crux open loop
   (up to 256 connections, opened as needed) at wrk's rate and at 0.9 of it (achieved rate
   and the share of requests crux itself sent late).
   Interleaved, --reps times; ratios per repetition. The server's CPU share is reported:
   near 100% means the server, not the client, set the pace.
B. Honest latency: a constant-rate run (--stall-rate req/s for --stall-duration s) against the
   server stalling once for 1 s; p99 reported by crux (corrected and raw) and by Locust
   (constant_throughput users), next to the ground truth from the schedule: requests
   intended inside a stall of S seconds wait until it ends, so the k-th slowest waits
   S - (k-1)/rate.
C. Memory: crux's max RSS after 1e5 and 1e6 requests, with and without --log.

Usage: python3 bench/load.py [--reps 3] [--seconds 5] [--no-build] [--skip-locust]
Needs wrk (apt-get install wrk) and, for Locust, bench/out/venv-locust
(python3 -m venv bench/out/venv-locust && bench/out/venv-locust/bin/pip install locust).
"""
import argparse
import csv
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import OUT, ROOT, ensure_out, machine, prepare_crux, proc_cpu_s, summarize  # noqa

SERVER_SRC = os.path.join(ROOT, "bench", "load_server.c")
LOCUST = os.path.join(OUT, "venv-locust", "bin", "locust")
CLIENT_CPU, SERVER_CPU = "0", "1"
LOCUST_USERS = (10, 100)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build_server():
    exe = os.path.join(OUT, "load_server")
    subprocess.run(["cc", "-O2", "-o", exe, SERVER_SRC], check=True)
    return exe


def build_curl_client():
    """bench/curl_client.c (libcurl multi, closed loop), or None without libcurl's headers."""
    exe = os.path.join(OUT, "curl_client")
    r = subprocess.run(["cc", "-O2", "-o", exe, os.path.join(ROOT, "bench", "curl_client.c"),
                        "-lcurl"], capture_output=True)
    return exe if r.returncode == 0 else None


def start_server(exe, *args):
    port = free_port()
    p = subprocess.Popen(["taskset", "-c", SERVER_CPU, exe, str(port)] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "ready" in p.stdout.readline()
    return p, "http://127.0.0.1:%d/" % port


def stop(p):
    p.kill()
    p.wait()


def timed(server, argv, timeout=120):
    """Runs argv pinned to the client core; returns (stdout, server CPU share, client max RSS KB)."""
    c0, t0 = proc_cpu_s(server.pid), time.monotonic()
    p = subprocess.Popen(["taskset", "-c", CLIENT_CPU] + argv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=timeout)
    _, _, ru = os.wait4(p.pid, os.WNOHANG) if p.returncode is None else (0, 0, None)
    c1, t1 = proc_cpu_s(server.pid), time.monotonic()
    if p.returncode not in (0, None):
        raise RuntimeError("%s failed: %s" % (argv[0], err[-500:]))
    return out, (c1 - c0) / (t1 - t0)


def crux_json(crux, url, *args, timeout=120, server=None):
    path = os.path.join(OUT, "load-run.json")
    argv = [crux, "load", url, "-q", "--json", path] + [str(a) for a in args]
    if server is not None:
        _, share = timed(server, argv, timeout)
    else:
        subprocess.run(argv, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
        share = None
    with open(path) as f:
        return json.load(f), share


def part_a(crux, server_exe, reps, secs, curl_exe):
    server, url = start_server(server_exe)
    rows = []
    try:
        for rep in range(reps):
            out, wrk_srv = timed(server, ["wrk", "-t1", "-c64", "-d%ds" % secs, url])
            wrk_rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            closed, closed_srv = crux_json(crux, url, "-c", 64, "-d", secs, server=server)
            curl_rate = None
            if curl_exe:
                out, _ = timed(server, [curl_exe, url, "64", str(secs)])
                m = re.search(r"requests (\d+) seconds ([\d.]+)", out)
                curl_rate = int(m.group(1)) / float(m.group(2))
            row = {"wrk": wrk_rate, "wrk_server_cpu": wrk_srv,
                   "crux_closed": closed["stats"]["throughput"], "crux_closed_server_cpu": closed_srv,
                   "libcurl_closed": curl_rate}
            for frac in (1.0, 0.9):
                rate = round(wrk_rate * frac)
                # open loop needs rate x latency connections; they open only as needed
                o, srv = crux_json(crux, url, "--rate", rate, "--connections", 256, "-d", secs,
                                   server=server)
                st = o["stats"]
                row["open_%g" % frac] = {
                    "rate": rate, "achieved": st["throughput"], "server_cpu": srv,
                    "late_crux_share": st["late_crux_lag"] / max(1, st["sent"]),
                    "late_share": st["late"] / max(1, st["sent"]),
                    "send_lag_p99_us": st["send_lag_us"]["p99"],
                    "cpu_share": st["cpu_s"] / st["elapsed_s"]}
            row["closed_ratio"] = row["crux_closed"] / wrk_rate
            row["libcurl_ratio"] = curl_rate / wrk_rate if curl_rate else None
            row["open_ratio"] = row["open_1"]["achieved"] / wrk_rate
            rows.append(row)
            print("A rep %d: wrk %.0f/s (server CPU %.0f%%); crux closed %.0f/s (%.2f of wrk); "
                  "libcurl multi closed %s; "
                  "crux open at %d/s: %.0f/s, %.2f%% late by crux, %.2f%% late in all; at %d/s: "
                  "%.0f/s, %.2f%% late by crux" % (
                      rep, wrk_rate, 100 * wrk_srv, row["crux_closed"], row["closed_ratio"],
                      "%.0f/s (%.2f of wrk)" % (curl_rate, row["libcurl_ratio"]) if curl_rate
                      else "not built",
                      row["open_1"]["rate"], row["open_1"]["achieved"],
                      100 * row["open_1"]["late_crux_share"], 100 * row["open_1"]["late_share"],
                      row["open_0.9"]["rate"], row["open_0.9"]["achieved"],
                      100 * row["open_0.9"]["late_crux_share"]), flush=True)
    finally:
        stop(server)
    return {"reps": rows,
            "closed_ratio": summarize([r["closed_ratio"] for r in rows]),
            "libcurl_ratio": summarize([r["libcurl_ratio"] for r in rows]),
            "open_ratio": summarize([r["open_ratio"] for r in rows])}


LOCUSTFILE = """
from locust import FastHttpUser, task, constant_throughput
class U(FastHttpUser):
    wait_time = constant_throughput(%f)
    @task
    def get(self):
        self.client.get("/")
"""


def truth_p99(rate, duration, stall):
    n = int(rate * duration)
    k = n - max(1, -(-99 * n // 100)) + 1
    return (stall - (k - 1) / rate) * 1e6


def part_b(crux, server_exe, rate, duration, skip_locust):
    stall_after = duration / 2
    out = {"rate": rate, "duration_s": duration, "stall_s": 1.0,
           "truth_p99_us": truth_p99(rate, duration, 1.0)}
    server, url = start_server(server_exe, "--stall-after", str(stall_after), "--stall", "1")
    try:
        o, _ = crux_json(crux, url, "--rate", rate, "-d", duration, "--connections", 16)
        out["crux_p99_us"] = o["stats"]["latency_us"]["p99"]
        out["crux_raw_p99_us"] = o["stats"]["latency_raw_us"]["p99"]
        out["crux_ok"] = o["stats"]["ok"]
    finally:
        stop(server)
    if skip_locust or not os.path.exists(LOCUST):
        out["locust"] = "not run (bench/out/venv-locust missing or --skip-locust)"
        return out
    for users in LOCUST_USERS:
        lf = os.path.join(OUT, "locustfile.py")
        with open(lf, "w") as f:
            f.write(LOCUSTFILE % (rate / users))
        server, url = start_server(server_exe, "--stall-after", str(stall_after), "--stall", "1")
        prefix = os.path.join(OUT, "locust")
        try:
            subprocess.run(["taskset", "-c", CLIENT_CPU, LOCUST, "-f", lf, "--headless", "-u",
                            str(users), "-r", str(users * 10), "-t", "%ds" % (duration + 1),
                            "--host", url.rstrip("/"), "--csv", prefix, "--only-summary"],
                           check=True, capture_output=True, timeout=duration + 60)
        finally:
            stop(server)
        with open(prefix + "_stats.csv") as f:
            agg = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"][0]
        out["locust_%d_users" % users] = {"p99_us": float(agg["99%"]) * 1000,
                                          "requests": int(agg["Request Count"]),
                                          "rps": float(agg["Requests/s"])}
    return out


def part_c(crux, server_exe):
    server, url = start_server(server_exe)
    rows = {}
    logf = os.path.join(OUT, "load-log.jsonl")
    try:
        for n in (100000, 1000000):
            for log in (False, True):
                argv = ["taskset", "-c", CLIENT_CPU, crux, "load", url, "-q", "-c", "64",
                        "-n", str(n)] + (["--log", logf] if log else [])
                p = subprocess.Popen(argv)
                _, status, ru = os.wait4(p.pid, 0)
                rows["%d%s" % (n, " --log" if log else "")] = ru.ru_maxrss
                print("C %d requests%s: max RSS %d KB" % (n, " --log" if log else "", ru.ru_maxrss),
                      flush=True)
    finally:
        stop(server)
        if os.path.exists(logf):
            os.unlink(logf)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--stall-rate", type=float, default=200)
    ap.add_argument("--stall-duration", type=float, default=10)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--skip-locust", action="store_true")
    ap.add_argument("--parts", default="a,b,c")
    args = ap.parse_args()
    ensure_out()
    crux, info = prepare_crux(build=not args.no_build)
    server_exe = build_server()
    res = {"machine": machine(), "crux": info}
    parts = args.parts.split(",")
    if "a" in parts:
        res["a"] = part_a(crux, server_exe, args.reps, args.seconds, build_curl_client())
        print("A: crux closed loop / wrk: median %.3f [%.3f..%.3f]; crux open loop at wrk's "
              "rate, achieved / wrk: median %.3f [%.3f..%.3f]" % (
                  res["a"]["closed_ratio"]["median"], res["a"]["closed_ratio"]["min"],
                  res["a"]["closed_ratio"]["max"], res["a"]["open_ratio"]["median"],
                  res["a"]["open_ratio"]["min"], res["a"]["open_ratio"]["max"]))
        if res["a"]["libcurl_ratio"]:
            print("A: libcurl multi closed loop / wrk: median %.3f [%.3f..%.3f]" % (
                res["a"]["libcurl_ratio"]["median"], res["a"]["libcurl_ratio"]["min"],
                res["a"]["libcurl_ratio"]["max"]))
    if "b" in parts:
        b = res["b"] = part_b(crux, server_exe, args.stall_rate, args.stall_duration,
                              args.skip_locust)
        print("B: %g req/s for %g s, one 1 s stall: p99 truth %.0f ms; crux corrected %.0f ms, "
              "crux raw %.0f ms" % (b["rate"], b["duration_s"], b["truth_p99_us"] / 1e3,
                                    b["crux_p99_us"] / 1e3, b["crux_raw_p99_us"] / 1e3))
        for users in LOCUST_USERS:
            lo = b.get("locust_%d_users" % users)
            if lo:
                print("B: Locust, %d users: p99 %.0f ms (%d requests, %.1f req/s)" % (
                    users, lo["p99_us"] / 1e3, lo["requests"], lo["rps"]))
        if "locust" in b:
            print("B: Locust " + b["locust"])
    if "c" in parts:
        res["c"] = part_c(crux, server_exe)
    with open(os.path.join(OUT, "load.json"), "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
