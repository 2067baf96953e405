"""The run store: crux record --label and crux load --label keep their runs in .crux/runs/
(or --store DIR), and crux runs lists them with their command, git commit and environment.

One interpreter (the first installed of the parametrization) is enough: the store does not
depend on the Python version, and each recording here lasts half a second.
"""
import json
import re
import sqlite3
import subprocess

import pytest

from conftest import SUPPORTED, resolve_interp, selected
from load_helpers import start_server

HEX12 = re.compile(r"^[0-9a-f]{12}$")


@pytest.fixture
def first_interp():
    """The first supported interpreter that is installed."""
    for ident, spec, _ in selected(SUPPORTED):
        got = resolve_interp(ident, spec)
        if not isinstance(got, str):
            return got
    pytest.skip("no supported Python interpreter is installed")


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=crux", "-c", "user.email=crux@test",
                           "-c", "init.defaultBranch=main"] + list(args), cwd=str(cwd),
                          check=True, capture_output=True, text=True).stdout.strip()


def record(crux, interp, cwd, *options):
    """Records targets/workload.py for half a second with OPTIONS, in `cwd`."""
    argv, _ = crux.target_argv(interp, "workload.py", "--duration", "10")
    crux.seq += 1
    out = crux.tmp / ("out-%d.txt" % crux.seq)
    result = crux.run("record", "-d", "0.5", "-q", "--no-summary", *options, "-o", out, "--",
                      *argv, cwd=cwd)
    assert result.returncode == 0, result.describe()
    return result


def runs_json(crux, cwd, *options):
    result = crux.run("runs", "--json", *options, cwd=cwd)
    assert result.returncode == 0, result.describe()
    return json.loads(result.stdout)


def meta(path):
    con = sqlite3.connect(str(path))
    try:
        return dict(con.execute("SELECT key, value FROM meta"))
    finally:
        con.close()


def test_record_keeps_runs(crux, first_interp):
    """Two recordings labelled base in a git work tree (clean, then with a change) and one
    labelled other with --save: crux runs lists them oldest first with the commit, the dirty
    flag, the same environment hash and the fingerprint, and filters by label."""
    proj = crux.tmp / "proj"
    proj.mkdir()
    git(proj, "init", "-q")
    (proj / "app.py").write_text("print('v1')\n")
    git(proj, "add", "app.py")
    git(proj, "commit", "-q", "-m", "v1")
    head = git(proj, "rev-parse", "HEAD")

    first = record(crux, first_interp, proj, "--label", "base")
    assert "kept run 1 as 'base' in .crux/runs" in first.stderr, first.describe()
    (proj / "app.py").write_text("print('v2')\n")
    record(crux, first_interp, proj, "--label", "base")
    saved = crux.tmp / "other.db"
    record(crux, first_interp, proj, "--label", "other", "--save", saved)

    runs = runs_json(crux, proj)
    assert [r["id"] for r in runs] == [1, 2, 3]
    assert [r["label"] for r in runs] == ["base", "base", "other"]
    assert [r["git_commit"] for r in runs] == [head] * 3
    assert [r["git_dirty"] for r in runs] == [False, True, True]
    for r in runs:
        assert r["kind"] == "recording" and "workload.py" in r["command"], r
        assert (proj / r["file"]).is_file(), r
        fp = r["fingerprint"]
        assert fp["cpu_count"] >= 1 and fp["kernel"] and fp["arch"], fp
        assert fp["python_version"] == first_interp.version_str, fp
        assert fp["python_build"] in ("shared", "static"), fp
        assert HEX12.match(r["fp_hash"]), r
        assert "load1" in r["machine"] and isinstance(r["machine"]["busiest"], list), r
        assert r["repeat"] == -1 and r["experiment"] is None
    assert len({r["fp_hash"] for r in runs}) == 1, "one machine, one interpreter, one hash"

    # the kept recording and the --save file both carry the fingerprint
    assert saved.is_file()
    kept = meta(proj / runs[2]["file"])
    assert json.loads(kept["fingerprint"])["python_version"] == first_interp.version_str
    assert json.loads(meta(saved)["fingerprint"]) == json.loads(kept["fingerprint"])

    assert [r["id"] for r in runs_json(crux, proj, "--label", "base")] == [1, 2]
    assert [r["id"] for r in runs_json(crux, proj, "--env", runs[0]["fp_hash"][:6])] == [1, 2, 3]
    assert [r["id"] for r in runs_json(crux, proj, "--env", "same")] == [1, 2, 3]
    none = crux.run("runs", "--label", "nope", cwd=proj)
    assert none.returncode == 0 and "no run in .crux/runs matches --label nope" in none.stderr
    table = crux.run("runs", cwd=proj)
    assert table.returncode == 0, table.describe()
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "time", "label", "kind"], table.stdout
    assert lines[2].split()[0] == "2" and "base" in lines[2] and head[:7] + "+" in lines[2]


def test_record_store_without_label(crux, first_interp):
    """--store DIR alone keeps the run there, unlabelled."""
    record(crux, first_interp, crux.tmp, "--store", "elsewhere")
    runs = runs_json(crux, crux.tmp, "--store", "elsewhere")
    assert len(runs) == 1 and runs[0]["label"] is None and runs[0]["git_commit"] is None
    assert runs[0]["file"] == "elsewhere/1.db"
    assert not (crux.tmp / ".crux").exists()


def test_load_keeps_runs(crux):
    """crux load --label keeps the JSON result (a staging file without --json, a copy of the
    --json file with it) with the URL as the command and this machine's fingerprint."""
    url, _ = start_server(crux, "basic")
    res = crux.run("load", url + "/", "--requests", "5", "-q", "--label", "lat")
    assert res.returncode == 0, res.describe()
    assert "kept run 1 as 'lat'" in res.stderr, res.describe()
    out = crux.tmp / "load.json"
    res = crux.run("load", url + "/", "--requests", "3", "-q", "--json", out, "--label", "lat")
    assert res.returncode == 0, res.describe()
    runs = runs_json(crux, crux.tmp, "--label", "lat")
    assert [r["kind"] for r in runs] == ["load", "load"]
    assert [r["command"] for r in runs] == [url + "/"] * 2
    assert runs[0]["file"] == ".crux/runs/1.json"
    kept = [json.loads((crux.tmp / r["file"]).read_text()) for r in runs]
    assert [k["stats"]["ok"] for k in kept] == [5, 3]
    assert json.loads(out.read_text()) == kept[1]
    fp = runs[0]["fingerprint"]
    assert fp["cpu_count"] >= 1 and "python_version" not in fp, fp
    assert HEX12.match(runs[0]["fp_hash"])
    assert not list((crux.tmp / ".crux" / "runs").glob(".incoming-*")), "staging files left"


def test_runs_without_store(crux):
    res = crux.run("runs")
    assert res.returncode == 0, res.describe()
    assert "no runs kept in .crux/runs yet: record with --label NAME" in res.stderr
    res = crux.run("runs", "--json")
    assert res.returncode == 0 and json.loads(res.stdout) == []


def test_bad_label_and_damaged_store(crux, first_interp):
    """A label that would not name runs is refused before anything runs; a damaged index is
    one line with the fix."""
    res = crux.run("record", "--label", "12", "--", first_interp.path, "-c", "pass")
    assert res.returncode == 2 and "names a run id" in res.stderr, res.describe()
    res = crux.run("load", "http://127.0.0.1:9/", "--label", "a,b")
    assert res.returncode == 2 and "choose a name without it" in res.stderr, res.describe()
    store = crux.tmp / ".crux" / "runs"
    store.mkdir(parents=True)
    (store / "runs.db").write_bytes(b"not a database " * 200)
    res = crux.run("runs")
    assert res.returncode == 1, res.describe()
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "runs.db is damaged" in lines[0] and "move it aside" in lines[0]
