"""crux record -o FILE.pstats: cProfile statistics that pstats.Stats (and snakeviz) load.

Each interpreter records targets/export_work.py (tokenize_text, Python, about 3/4 of each
request; score_batch, C, about 1/4; a background thread sleeping, its idle samples left out
without --idle),
and every installed interpreter loads the file: loading is cheap, and the marshal format
must read the same from 3.8 to 3.13. Hostile names come through as the interpreter held them,
and bytes that are not UTF-8 in a saved recording become U+FFFD in both pstats and pprof.
"""
import gzip
import json
import sqlite3
import subprocess

from conftest import SUPPORTED, resolve_interp, selected, target_env
from crux_helpers import RATE
from test_pprof import hostile_truth, read_pprof, record_work, wrote

INTERVAL = 1.0 / int(RATE)

# Loads argv[1] and prints what the test checks as JSON. Python 3.8 syntax.
LOADER = r"""
import io, json, pstats, sys
out = io.StringIO()
st = pstats.Stats(sys.argv[1], stream=out)
st.sort_stats("tottime")
hot = [k for k in st.stats if k[2] == sys.argv[2]]
st.print_stats(10)
st.print_callers(sys.argv[2])
print(json.dumps({
    "first": list(st.fcn_list[0]),
    "total_tt": st.total_tt,
    "keys": [list(k) for k in st.stats],
    "hot": [[list(k), list(st.stats[k][:4]),
             [[list(c), list(v)] for c, v in st.stats[k][4].items()]] for k in hot],
    "printed": out.getvalue(),
}))
"""


def installed():
    """Every installed interpreter among those selected (CRUX_PYTHONS)."""
    found = [resolve_interp(ident, spec) for ident, spec, _ in selected(SUPPORTED)]
    return [i for i in found if not isinstance(i, str)]


def load(interp, path, hot):
    proc = subprocess.run([interp.path, "-c", LOADER, str(path), hot], capture_output=True,
                          timeout=60, env=target_env())
    assert proc.returncode == 0, "%s cannot load %s:\n%s" % (
        interp.id, path, proc.stderr.decode("utf-8", "replace")[-3000:])
    return json.loads(proc.stdout.decode("utf-8"))


def test_pstats_loads_in_every_python(crux, interp):
    path, truth, result = record_work(crux, interp, "out.pstats", save="run.db", agent=False)
    n = wrote(result, "pstats")
    for loader in installed():
        got = load(loader, path, "tokenize_text")
        where = "%s loading %s's file" % (loader.id, interp.id)
        assert got["first"][2] == "tokenize_text", "%s: first by tottime %s" % (where,
                                                                                got["first"])
        assert got["first"][0].endswith("export_work.py") and got["first"][1] > 0, got["first"]
        # every sample has a leaf function: self times add up to the samples
        assert abs(got["total_tt"] - n * INTERVAL) < 1e-6, (where, got["total_tt"], n)
        [(key, (cc, nc, tt, ct), callers)] = got["hot"]
        assert cc == nc and nc > 0 and ct >= tt > 0.3 * n * INTERVAL, (where, cc, nc, tt, ct)
        assert [c[0][2] for c in callers] == ["handle_request"], (where, callers)
        assert callers[0][1][0] == nc, "every tokenize_text sample is under handle_request"
        names = set(k[2] for k in got["keys"])
        assert {"handle_request", "score_batch", "main"} <= names, (where, names)
        assert "function calls in" in got["printed"] and "tokenize_text" in got["printed"]
        assert "was called by" in got["printed"], got["printed"][-2000:]
    again = crux.tmp / "again.pstats"
    rep = crux.run("report", crux.tmp / "run.db", "-o", again)
    assert rep.returncode == 0, rep.describe()
    assert again.read_bytes() == path.read_bytes(), "crux report wrote other statistics"


def test_pstats_hostile_names(crux, interp):
    result, path, truth_path = crux.record(interp, "hostile_names.py",
                                           options=["--rate", RATE], out="names.pstats")
    assert result.returncode == 0, result.describe()
    with open(str(truth_path), encoding="utf-8") as f:
        want = hostile_truth(json.load(f))
    got = load(interp, path, want[0][0])
    keys = set((k[2], k[0]) for k in got["keys"])
    for name, file in want:
        assert (name, file) in keys, "%r (%r) missing: %s" % (name, file, sorted(keys))


def test_invalid_utf8_in_a_saved_recording(crux, one_interp):
    """A recording is bytes as recorded (or as a user's tool wrote them): the exports must
    still be UTF-8, with U+FFFD for each invalid byte, and keep control characters apart."""
    record_work(crux, one_interp, "out.txt", save="run.db", agent=False)
    db = sqlite3.connect(str(crux.tmp / "run.db"))
    with db:
        db.execute("UPDATE strings SET s = CAST(X'746f6bff0a666e' AS TEXT) "
                   "WHERE s = 'tokenize_text'")  # b"tok\xff\nfn"
    db.close()
    bad = "tok\ufffd\nfn"
    out = crux.tmp / "bad.pstats"
    rep = crux.run("report", crux.tmp / "run.db", "-o", out)
    assert rep.returncode == 0, rep.describe()
    got = load(one_interp, out, bad)
    assert got["first"][2] == bad, got["first"]
    pb = crux.tmp / "bad.pb.gz"
    rep = crux.run("report", crux.tmp / "run.db", "-o", pb)
    assert rep.returncode == 0, rep.describe()
    prof = read_pprof(pb)  # decodes every string as strict UTF-8
    assert bad in set(n for n, _ in prof.functions.values())
    assert gzip.decompress(pb.read_bytes()).count(b"\xef\xbf\xbd") == 1
