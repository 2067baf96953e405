"""crux serve's GPU gauges at /metrics, with the scripted NVML stand-in (tests/gpu/).

crux serve launches report_tokenize.py (so the target is crux's child, which the stand-in
reports as the process on the GPU) with the stand-in on its LD_LIBRARY_PATH playing a trace
of one constant step: the gauges must show that step's values, per device with the `gpu` and
`name` labels, and the target's own GPU memory and SM utilization. A device that is lost
drops out of the gauges and is counted; crux serve keeps serving and exits cleanly.
"""
import re
import signal
import time

import pytest

from conftest import target_env
from test_gpu import H100, STANDIN
from test_serve import SERVING_RE, get

# one step, read again and again: any kernel running 40%, memory busy 20%, SM active 30%
STEP = "step 40 20 30 25 10 15\n"
MIB = 1 << 20
H100_TOTAL = 81559 * MIB
NAME = "NVIDIA_H100_80GB_HBM3"
LINE_RE = re.compile(r'^(crux_gpu_\w+)(\{[^}]*\})? (\S+)$', re.M)


@pytest.fixture(scope="module")
def standin():
    if not (STANDIN / "libnvidia-ml.so.1").exists():
        pytest.fail("%s not built: run `make nvml-standin`" % STANDIN)
    return STANDIN


def serve_launched(crux, interp, tmp_path, trace, *options):
    env = target_env()
    env["LD_LIBRARY_PATH"] = str(STANDIN)
    path = tmp_path / "nvml.trace"
    path.write_text(trace)
    env["CRUX_NVML_TRACE"] = str(path)
    argv, _ = crux.target_argv(interp, "report_tokenize.py", "--duration", "60")
    proc = crux.start("serve", "--listen", "127.0.0.1:0", *options, "--", *argv, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = SERVING_RE.search(proc.err_path.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail("crux serve did not start\n%s" % proc.finish(10).describe())


def stop(crux, proc):
    """SIGTERM: crux passes it to the launched target and exits with the target's status."""
    proc.popen.send_signal(signal.SIGTERM)
    result = proc.finish(60)
    crux.check_sanitizers(result)
    assert result.returncode in (0, 128 + signal.SIGTERM), result.describe()


def gpu_metrics(url):
    """{(name, labels): value} of the crux_gpu_ lines, and the text."""
    status, body = get(url + "/metrics", 10)
    assert status == 200
    text = body.decode("utf-8")
    out = {}
    for m in LINE_RE.finditer(text):
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out, text


def wait_for(url, cond, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        got, text = gpu_metrics(url)
        if cond(got) or time.monotonic() > deadline:
            return got, text
        time.sleep(0.3)


def test_serve_gpu_gauges_show_the_trace(crux, one_interp, tmp_path, standin):
    srv, url = serve_launched(crux, one_interp, tmp_path, H100 + STEP)
    dev = (("gpu", "0"), ("name", NAME))
    got, text = wait_for(url, lambda g: any(k[0] == "crux_gpu_process_memory_used_bytes"
                                            for k in g))
    assert got.get(("crux_gpu_kernel_busy_ratio", dev)) == pytest.approx(0.40), text
    assert got.get(("crux_gpu_sm_active_ratio", dev)) == pytest.approx(0.30), text
    # the stand-in's memory used: total / 100 * (memory busy / 2 + 10)
    assert got.get(("crux_gpu_memory_used_bytes", dev)) == H100_TOTAL // 100 * 20, text
    assert got.get(("crux_gpu_memory_total_bytes", dev)) == H100_TOTAL, text
    assert got.get(("crux_gpu_power_watts", dev)) == pytest.approx(270.0), text  # 70 W + 5 W/%
    assert got.get(("crux_gpu_sm_clock_hz", dev)) == pytest.approx(1980e6), text
    assert got.get(("crux_gpu_devices", ())) == 1
    assert got.get(("crux_gpu_devices_lost_total", ())) == 0
    procs = {k: v for k, v in got.items() if k[0].startswith("crux_gpu_process_")}
    pids = {dict(k[1])["pid"] for k in procs}
    assert len(pids) == 1, procs
    with open("/proc/%s/stat" % pids.pop()) as f:  # the launched target: crux's child
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == srv.popen.pid
    assert all(dict(k[1])["gpu"] == "0" and dict(k[1])["name"] == NAME for k in procs), procs
    mem = [v for k, v in procs.items() if k[0] == "crux_gpu_process_memory_used_bytes"]
    assert mem == [1 << 30], procs
    sm = [v for k, v in procs.items() if k[0] == "crux_gpu_process_sm_utilization_ratio"]
    assert sm == [pytest.approx(0.40)], procs
    # each metric family declared once, every sample line well formed
    types = re.findall(r"^# TYPE (crux_gpu_\S+) (gauge|counter)$", text, re.M)
    assert len(types) == len(set(types)) >= 10, types
    stop(crux, srv)


def test_serve_gpu_lost_device_drops_out(crux, one_interp, tmp_path, standin):
    srv, url = serve_launched(crux, one_interp, tmp_path, H100 + STEP + "lost_after 15\n")
    got, text = wait_for(url, lambda g: g.get(("crux_gpu_devices_lost_total", ())) == 1)
    assert got.get(("crux_gpu_devices_lost_total", ())) == 1, text
    assert got.get(("crux_gpu_devices", ())) == 0, text
    assert not [k for k in got if "gpu" in dict(k[1])], text  # no per-device line left
    # still serving: the CPU side goes on
    status, body = get(url + "/metrics", 10)
    assert status == 200 and b"crux_samples_total" in body
    stop(crux, srv)


def test_serve_no_gpu_option(crux, one_interp, tmp_path, standin):
    srv, url = serve_launched(crux, one_interp, tmp_path, H100 + STEP, "--no-gpu")
    time.sleep(1.0)
    got, text = gpu_metrics(url)
    assert not got, text
    stop(crux, srv)
