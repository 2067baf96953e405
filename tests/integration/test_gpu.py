"""GPU sampling without a GPU: crux loads a scripted NVML stand-in in place of the driver's.

`make nvml-standin` builds build/nvml-standin/libnvidia-ml.so.1 (tests/gpu/nvml_standin.c);
each test puts its folder on crux's LD_LIBRARY_PATH and names a trace in CRUX_NVML_TRACE
(the format is in the stand-in's opening comment). The target is report_tokenize.py, whose
designed-in bottleneck is the host stage 'tokenize' (test_report.py): with a starved GPU the
verdict must say so and name that stage; with a busy GPU the GPU's own verdict must say how
it is busy; with a failing or vanishing device the CPU verdict must stand, with one note.
"""
import json
import os
import re
import sqlite3

import pytest

from conftest import REPO, target_env

STANDIN = REPO / "build" / "nvml-standin"
DATA_RE = re.compile(r'<script type="application/json" id="crux-data">(.*?)</script>', re.S)

H100 = "device NVIDIA_H100_80GB_HBM3 81559 1\ndriver 550.54.15\n"
A100 = "device NVIDIA_A100-SXM4-40GB 40960 0\ndriver 535.104.05\n"  # no GPM before Hopper
STARVED = "step 30 10 12 8 5 6\nstep 20 8 10 6 4 5\nstep 40 12 15 10 8 7\n"
SATURATED = "step 99 60 88 70 75 40\nstep 98 62 90 72 78 42\n"
MEMORY = "step 97 90 70 60 5 85\nstep 96 88 68 58 6 83\n"


@pytest.fixture(scope="module")
def standin():
    lib = STANDIN / "libnvidia-ml.so.1"
    if not lib.exists():
        pytest.fail("%s not built: run `make nvml-standin`" % lib)
    return STANDIN


def record(crux, interp, tmp_path, trace, options=(), out="verdict.json", standin_dir=None):
    """Records report_tokenize.py for 2 s with the stand-in playing `trace` (None: no trace
    file; standin_dir None: no stand-in on the path at all). Returns (Result, out path)."""
    env = target_env()
    env.pop("LD_LIBRARY_PATH", None)
    env.pop("CRUX_NVML_TRACE", None)
    if standin_dir is not None:
        env["LD_LIBRARY_PATH"] = str(standin_dir)
    if trace is not None:
        path = tmp_path / "nvml.trace"
        path.write_text(trace)
        env["CRUX_NVML_TRACE"] = str(path)
    argv, _ = crux.target_argv(interp, "report_tokenize.py", "--duration", "8")
    out_path = tmp_path / out
    fmt = ["-f", "verdict"] if out.endswith(".json") else []
    result = crux.run("record", "-d", "2", "--rate", "100", *fmt, *options, "-o", out_path,
                      "--", *argv, env=env, timeout=60)
    crux.check_sanitizers(result)
    assert result.returncode == 0, result.describe()
    return result, out_path


def verdict(path):
    with open(str(path)) as f:
        return json.load(f)


def assert_cpu_verdict_stands(v):
    assert v["verdict"] and v["verdict"]["type"] == "host", v["reason"]
    assert v["verdict"]["stage"] == "tokenize", v["verdict"]


def test_starved_gpu_names_the_host_stage(crux, one_interp, tmp_path, standin):
    result, path = record(crux, one_interp, tmp_path, H100 + STARVED, standin_dir=standin)
    v = verdict(path)
    assert v["gpu"]["kind"] == "starved", v["gpu"]
    assert v["verdict"]["type"] == "gpu", v["reason"]
    assert v["verdict"]["stage"] == "tokenize"
    assert "GPU starved" in v["reason"] and "'tokenize'" in v["reason"], v["reason"]
    assert 20 <= v["gpu"]["any_kernel_running"] <= 40, v["gpu"]
    assert v["gpu"]["target_sm_util"] is not None, "per-process figures of the target"
    assert "gpu: GPU starved" in result.stderr, result.stderr


def test_saturated_gpu_is_compute_bound(crux, one_interp, tmp_path, standin):
    _, path = record(crux, one_interp, tmp_path, H100 + SATURATED, standin_dir=standin)
    g = verdict(path)["gpu"]
    assert g["kind"] == "compute_bound", g
    assert g["tensor_active"] > 70 and g["sm_active"] > 80, g


def test_memory_bound_trace(crux, one_interp, tmp_path, standin):
    _, path = record(crux, one_interp, tmp_path, H100 + MEMORY, standin_dir=standin)
    g = verdict(path)["gpu"]
    assert g["kind"] == "memory_bound", g
    assert g["label"] == "GPU memory-bandwidth bound"


def test_without_gpm_the_rules_not_applied_are_named(crux, one_interp, tmp_path, standin):
    _, path = record(crux, one_interp, tmp_path, A100 + SATURATED, standin_dir=standin)
    g = verdict(path)["gpu"]
    assert g["kind"] == "busy", g
    assert g["sm_active"] is None and g["tensor_active"] is None
    assert "compute bound" in g["not_applied"] and "GPM" in g["not_applied"], g


@pytest.mark.parametrize("extra, words", [
    ("lost_after 4\n", "lost after"),
    ("fail_after 3\n", "failed"),
])
def test_failing_device_gives_a_note_and_the_cpu_verdict(crux, one_interp, tmp_path, standin,
                                                         extra, words):
    # a starved trace that stops after a few reads: too little to judge would still be
    # judged on what came, so the verdict may say starved; the CPU verdict's stage stands
    result, path = record(crux, one_interp, tmp_path, H100 + extra + STARVED,
                          standin_dir=standin)
    v = verdict(path)
    assert v["gpu"]["note"] and words in v["gpu"]["note"], v["gpu"]
    assert v["verdict"]["stage"] == "tokenize", v["reason"]
    assert "gpu note:" in result.stderr


@pytest.mark.parametrize("extra, words", [
    ("init_error 4\n", "Insufficient Permissions"),
    ("no_devices\n", "no GPU"),
])
def test_unusable_nvml_gives_a_note_and_the_cpu_verdict(crux, one_interp, tmp_path, standin,
                                                        extra, words):
    _, path = record(crux, one_interp, tmp_path, H100 + extra + STARVED, standin_dir=standin)
    v = verdict(path)
    assert v["gpu"]["kind"] == "none" and words in v["gpu"]["note"], v["gpu"]
    assert_cpu_verdict_stands(v)


def test_process_without_permission_keeps_device_figures(crux, one_interp, tmp_path, standin):
    _, path = record(crux, one_interp, tmp_path, H100 + "proc_error 4\n" + STARVED,
                     standin_dir=standin)
    g = verdict(path)["gpu"]
    assert g["kind"] == "starved" and g["target_sm_util"] is None, g
    assert "per-process GPU figures not allowed" in g["note"], g


def test_no_library_no_gpu_section_no_error(crux, one_interp, tmp_path):
    result, path = record(crux, one_interp, tmp_path, None, standin_dir=None)
    v = verdict(path)
    assert v["gpu"] is None
    assert "gpu:" not in result.stderr and "gpu note" not in result.stderr, result.stderr
    assert "nvml" not in result.stderr.lower(), result.stderr
    assert_cpu_verdict_stands(v)


def test_no_gpu_option(crux, one_interp, tmp_path, standin):
    _, path = record(crux, one_interp, tmp_path, H100 + STARVED, options=["--no-gpu"],
                     standin_dir=standin)
    v = verdict(path)
    assert v["gpu"] is None
    assert_cpu_verdict_stands(v)


def test_report_and_saved_recording(crux, one_interp, tmp_path, standin):
    db = tmp_path / "run.db"
    _, path = record(crux, one_interp, tmp_path, H100 + STARVED, options=["--save", db],
                     out="report.html", standin_dir=standin)
    html = path.read_text(encoding="utf-8")
    assert '<section id="gpu">' in html and "any kernel running %" in html
    assert "SM active % (GPM)" in html and "<polyline" in html
    assert "NVIDIA_H100_80GB_HBM3" in html and "550.54.15" in html  # run facts
    data = json.loads(DATA_RE.search(html).group(1))
    assert data["report"]["gpu"]["kind"] == "starved"
    with sqlite3.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM gpu_samples").fetchone()[0] >= 5
        assert con.execute("SELECT name FROM gpu_devices").fetchone()[0] == \
            "NVIDIA_H100_80GB_HBM3"
        assert con.execute("SELECT count(*) FROM gpu_processes").fetchone()[0] > 0
    again = tmp_path / "again.json"
    result = crux.run("report", db, "-f", "verdict", "-o", again)
    assert result.returncode == 0, result.describe()
    assert verdict(again)["gpu"]["kind"] == "starved"
