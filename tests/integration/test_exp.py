"""crux exp: experiments over variant configurations. A variant whose output differs is
flagged and cannot win; the run order is interleaved and reproducible from the seed; an
experiment killed with SIGKILL resumes without re-running what was done; a typo in a
definition file names its line. One interpreter: the subject is crux's scheduling, not
the Python version."""
import json
import os
import signal
import time

# The job: appends "RUN VARIANT" to a side-effect file when it starts (so every execution is
# counted, even one killed midway), sleeps a little, prints its answer (wrong for n=3) and,
# with JOB_LOSS set, a number that differs a little per variant.
JOB = r"""
import os, sys, time
n = int(sys.argv[1])
with open(sys.argv[2], "a") as f:
    f.write("%s %d\n" % (os.environ.get("CRUX_EXP_RUN", "?"), n))
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0.0)
print("answer", 42 if n != 3 else 41)
if os.environ.get("JOB_LOSS"):
    print("loss", 0.25 + float(os.environ["JOB_LOSS"]) * n)
"""


def write_job(tmp_path):
    job = tmp_path / "job.py"
    job.write_text(JOB)
    return job


def measured_order(data):
    return [r["variant"] for r in data["runs"] if not r["warmup"]]


def test_differing_variant_flagged_and_order_interleaved(crux, one_interp, tmp_path):
    job = write_job(tmp_path)
    side = tmp_path / "side.txt"
    res = crux.run("exp", "--vary", "n=1,2,3", "--repeats", "4", "--seed", "11", "--json",
                   "out.json", "--", one_interp.path, job, "{n}", side)
    assert res.returncode == 0, res.describe()
    assert "seed 11" in res.stderr, res.describe()
    data = json.loads((tmp_path / "out.json").read_text())
    by = {v["name"]: v for v in data["variants"]}
    assert by["n=3"]["outputs_differ"] and not by["n=3"]["eligible"], res.describe()
    assert "answer 41" in by["n=3"]["outputs_why"]
    assert not by["n=2"]["outputs_differ"] and not by["n=1"]["outputs_differ"]
    assert data["winner"] != "n=3"
    assert "OUTPUTS DIFFER" in res.stdout
    assert by["n=1"]["runs"] == 4 and by["n=3"]["runs"] == 4
    # every run happened: 3 warm-ups and 12 measured runs
    assert len(side.read_text().splitlines()) == 15
    # warm-ups first, one per variant; then the measured runs interleaved, not in blocks
    warm = [r["variant"] for r in data["runs"] if r["warmup"]]
    assert warm == ["n=1", "n=2", "n=3"]
    order = measured_order(data)
    assert sorted(order) == sorted(["n=1", "n=2", "n=3"] * 4)
    blocks = 1 + sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert blocks > 3, order
    # the same seed gives the same order (a dry run in another folder schedules it again)
    other = tmp_path / "other"
    other.mkdir()
    dry = crux.run("exp", "--vary", "n=1,2,3", "--repeats", "4", "--seed", "11", "--dry-run",
                   "--", one_interp.path, job, "{n}", side, cwd=other)
    assert dry.returncode == 0, dry.describe()
    planned = [line.split()[1] for line in dry.stdout.splitlines() if "warm-up" not in line]
    assert planned == order
    dry2 = crux.run("exp", "--vary", "n=1,2,3", "--repeats", "4", "--seed", "12", "--dry-run",
                    "--", one_interp.path, job, "{n}", side, cwd=other)
    assert [line.split()[1] for line in dry2.stdout.splitlines()
            if "warm-up" not in line] != order


def test_tolerance_check_accepts_small_numeric_differences(crux, one_interp, tmp_path):
    """check = tolerance: 'loss 0.250000001' and 'loss 0.250000002' agree at 1e-6, while the
    answer 41 against 42 is still beyond it."""
    job = write_job(tmp_path)
    side = tmp_path / "side.txt"
    conf = tmp_path / "tol.conf"
    conf.write_text("# numbers within 1e-6 agree\n"
                    "command = %s %s {n} %s\n"
                    "vary n = 1 2 3\n"
                    "repeats = 2\n"
                    "warmup = 0\n"
                    "env.JOB_LOSS = 1e-9\n"
                    "check = tolerance=1e-6\n" % (one_interp.path, job, side))
    res = crux.run("exp", conf, "--json", "out.json")
    assert res.returncode == 0, res.describe()
    by = {v["name"]: v for v in json.loads((tmp_path / "out.json").read_text())["variants"]}
    assert not by["n=2"]["outputs_differ"], by["n=2"]
    assert by["n=3"]["outputs_differ"]
    # exact: the same outputs differ
    res = crux.run("exp", conf, "--check", "exact", "--json", "exact.json")
    by = {v["name"]: v for v in json.loads((tmp_path / "exact.json").read_text())["variants"]}
    assert by["n=2"]["outputs_differ"] and "loss" in by["n=2"]["outputs_why"], by["n=2"]


def state_runs(path):
    try:
        return json.loads(path.read_text())["runs"]
    except (OSError, ValueError, KeyError):
        return []


def test_sigkill_then_resume(crux, one_interp, tmp_path):
    job = write_job(tmp_path)
    side = tmp_path / "side.txt"
    args = ("exp", "--name", "resume", "--vary", "n=1,2", "--repeats", "3", "--seed", "5",
            "--json", "out.json", "--", one_interp.path, job, "{n}", side, "0.2")
    proc = crux.start(*args)
    state = tmp_path / ".crux" / "runs" / "exp-resume.json"
    deadline = time.monotonic() + 60
    while len(state_runs(state)) < 3 and time.monotonic() < deadline:
        assert proc.popen.poll() is None, proc.finish().describe()
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)
    done = {r["slot"] for r in state_runs(state)}
    assert 3 <= len(done) < 8, "killed too late to test resuming: %s" % done
    time.sleep(0.5)  # the run in progress died with crux (PR_SET_PDEATHSIG): no more lines
    before = side.read_text().splitlines()
    time.sleep(0.4)
    assert side.read_text().splitlines() == before, "a run outlived crux"
    res = crux.run(*args)
    assert res.returncode == 0, res.describe()
    assert "resuming: %d of 8 runs done" % len(done) in res.stderr, res.describe()
    lines = side.read_text().splitlines()
    runs = [int(line.split()[0]) for line in lines]
    for slot in done:
        assert runs.count(slot) == 1, "run %d done before the kill was run again" % slot
    assert sorted(set(runs)) == list(range(8))
    # at most the one run in progress at the kill was started twice
    assert len(lines) <= 9, lines
    data = json.loads((tmp_path / "out.json").read_text())
    assert sum(v["runs"] for v in data["variants"]) == 6


def test_typo_names_the_line(crux, tmp_path):
    conf = tmp_path / "exp.conf"
    conf.write_text("name = t\ncommand = true {n}\nvary n = 1 2\n\nrepats = 5\n")
    res = crux.run("exp", conf)
    assert res.returncode == 2, res.describe()
    assert "exp.conf:5: unknown key 'repats': did you mean 'repeats'?" in res.stderr
    conf.write_text("command = echo {bacth}\nvary batch = 1 2\n")
    res = crux.run("exp", conf)
    assert res.returncode == 2 and "did you mean '{batch}'" in res.stderr, res.describe()


def test_profile_keeps_each_run_in_the_store(crux, one_interp, tmp_path):
    """profile = yes: every measured run is recorded by crux record --save and kept in the
    run store with the experiment's id, its variant and its repeat; each variant reports the
    verdict of its last recording."""
    job = write_job(tmp_path)
    side = tmp_path / "side.txt"
    res = crux.run("exp", "--name", "prof", "--vary", "n=1,2", "--repeats", "2", "--warmup",
                   "0", "--profile", "--json", "out.json", "--", one_interp.path, job, "{n}",
                   side, "0.05")
    assert res.returncode == 0, res.describe()
    listed = crux.run("runs", "--json")
    assert listed.returncode == 0, listed.describe()
    runs = json.loads(listed.stdout)
    assert sorted((r["variant"], r["repeat"]) for r in runs) == [
        ("n=1", 0), ("n=1", 1), ("n=2", 0), ("n=2", 1)]
    assert all(r["kind"] == "recording" and r["experiment"].startswith("prof-") for r in runs)
    assert len({r["experiment"] for r in runs}) == 1
    data = json.loads((tmp_path / "out.json").read_text())
    for run in data["runs"]:
        assert run["recording"] and (tmp_path / run["recording"]).exists(), run
    assert all(v["verdict"] for v in data["variants"]), data["variants"]


# A tiny server: batch makes it faster; batch=3 answers /b differently (a wrong answer under
# load); /health answers when it is up.
SERVER = r"""
import sys, time
from http.server import HTTPServer, BaseHTTPRequestHandler
port, batch = int(sys.argv[1]), int(sys.argv[2])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path != "/health":
            time.sleep(0.004 / batch)
        wrong = batch == 3 and self.path == "/b"
        body = ("%s %d\n" % (self.path, 8 if wrong else 7)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def test_server_mode_flags_a_different_body(crux, one_interp, tmp_path):
    server = tmp_path / "srv.py"
    server.write_text(SERVER)
    reqs = tmp_path / "reqs.jsonl"
    reqs.write_text('{"path": "/a"}\n{"path": "/b"}\n')
    conf = tmp_path / "srv.conf"
    conf.write_text(
        "name = srv\n"
        "server = %s %s {port} {batch}\n"
        "ready = http://127.0.0.1:{port}/health\n"
        "load = http://127.0.0.1:{port}/ --concurrency 1 --requests 20 --requests-file %s\n"
        "vary batch = 1 2 3\n"
        "repeats = 2\n"
        "warmup = 0\n"
        "slo = p99=5s\n" % (one_interp.path, server, reqs))
    res = crux.run("exp", conf, "--json", "out.json")
    assert res.returncode == 0, res.describe()
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["mode"] == "server"
    by = {v["name"]: v for v in data["variants"]}
    assert by["batch=3"]["outputs_differ"], by["batch=3"]
    assert "request template 1" in by["batch=3"]["outputs_why"], by["batch=3"]["outputs_why"]
    assert "'/b 8' vs '/b 7'" in by["batch=3"]["outputs_why"]
    assert not by["batch=2"]["outputs_differ"] and not by["batch=1"]["outputs_differ"]
    assert data["winner"] != "batch=3"
    for name in ("batch=1", "batch=2"):
        v = by[name]
        assert v["runs"] == 2 and v["throughput"]["mean"] > 0 and v["p99_s"]["mean"] > 0, v
        assert v["slo_met"] and v["errors"] == 0
    # each run's load result is kept in the run store with its variant and repeat
    runs = json.loads(crux.run("runs", "--json").stdout)
    assert sorted((r["variant"], r["repeat"]) for r in runs if r["kind"] == "load") == sorted(
        (b, r) for b in ("batch=1", "batch=2", "batch=3") for r in (0, 1))
    # every server was stopped
    assert not servers_running(str(server))


def servers_running(script):
    """Pids of live processes whose command line holds `script`."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if script.encode() in f.read():
                    pids.append(int(pid))
        except (OSError, ValueError):
            pass
    return pids


def test_html_page_escapes_names(crux, one_interp, tmp_path):
    """-o FILE.html: one page, no scripts, inline SVG plots; a name with markup is text."""
    res = crux.run("exp", "--vary", "tag=<i>x</i>,a&b", "--repeats", "2", "--warmup", "0",
                   "--cost-per-hour", "3.6", "-o", "exp.html", "--json", "exp.json", "--",
                   one_interp.path, "-c", "print(1)", "{tag}")
    assert res.returncode == 0, res.describe()
    page = (tmp_path / "exp.html").read_text()
    assert "<script" not in page and page.count("<svg") == 3
    assert "tag=&lt;i&gt;x&lt;/i&gt;" in page and "tag=a&amp;b" in page
    assert "<i>" not in page
    data = json.loads((tmp_path / "exp.json").read_text())
    for v in data["variants"]:
        # $3.6 an hour is $0.001 a second: the cost of 1,000 runs is the mean wall time
        assert abs(v["cost_per_1000"] - 1.0 / v["throughput"]["mean"]) < 1e-9, v


def test_changed_definition_starts_anew(crux, one_interp, tmp_path):
    """The same definition resumes (a finished one is only re-reported, also when only the
    check changed); another definition starts a new experiment with a warning and keeps the
    old state beside."""
    base = ["exp", "--name", "ch", "--vary", "n=1,2", "--repeats", "2", "--warmup", "0"]
    cmd = ["--", one_interp.path, "-c", "print(1)", "{n}"]
    first = crux.run(*base, *cmd)
    assert first.returncode == 0, first.describe()
    again = crux.run(*base, "--check", "tokens", *cmd)
    assert again.returncode == 0 and "resuming: 4 of 4 runs done" in again.stderr, again.describe()
    assert "run 1/4" not in again.stderr
    changed = crux.run(*base, "--repeats", "3", *cmd)
    assert changed.returncode == 0, changed.describe()
    assert "the definition of 'ch' changed" in changed.stderr, changed.describe()
    assert "run 6/6" in changed.stderr
    kept = list((tmp_path / ".crux" / "runs").glob("exp-ch.*.json"))
    assert len(kept) == 1 and len(json.loads(kept[0].read_text())["runs"]) == 4


def test_server_that_never_gets_ready_fails_its_runs(crux, one_interp, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("server = %s -c 'import sys; sys.exit(3)' {port}\n"
                    "ready = http://127.0.0.1:{port}/\n"
                    "load = http://127.0.0.1:{port}/ --requests 1\n"
                    "repeats = 2\nwarmup = 0\n" % one_interp.path)
    res = crux.run("exp", conf, "--json", "out.json")
    assert res.returncode == 1, res.describe()
    assert "server not ready: the server exited (status 3)" in res.stderr, res.describe()
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["winner"] is None and data["variants"][0]["failed"] == 2
    assert "no clear winner" in data["why"]
