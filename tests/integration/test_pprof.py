"""crux record -o FILE.pb.gz: pprof files that `go tool pprof` reads, with the right counts,
functions and labels; the same file again from a saved recording; hostile names intact.

targets/export_work.py serves requests on its main thread (tokenize_text in Python, then
score_batch in C) while a second thread sleeps in background_poll; with crux's agent on
PYTHONPATH the two calls run in the stages "tokenize" and "score". The files are read two
ways: by `go tool pprof` (-top, -traces, -tags), the tool users run, and by a small
profile.proto decoder here, for exact names and values. The go tests skip when `go` is not
installed (tools/setup.sh installs golang-go).
"""
import ast
import gzip
import json
import re
import shutil
import subprocess

import pytest

from conftest import TARGETS, target_env
from crux_helpers import RATE
from test_stages import agent_dir

PERIOD_NS = 10 ** 9 // int(RATE)
WROTE_RE = re.compile(r"wrote \S+ \((pprof|pstats)\): (\d+) samples")


# -- a profile.proto reader ---------------------------------------------------------------------

def _varint(buf, i):
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf):
    """(field number, value) of one message: an int for varints, bytes when length-delimited."""
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        wire = tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value = buf[i:i + n]
            i += n
        else:
            raise AssertionError("unexpected wire type %d" % wire)
        yield tag >> 3, value


def _ints(value):
    """A repeated varint field: packed (bytes) or one element (int)."""
    if isinstance(value, int):
        return [value]
    out, i = [], 0
    while i < len(value):
        v, i = _varint(value, i)
        out.append(v)
    return out


class Pprof(object):
    """The decoded profile: strings (UTF-8 checked), functions, locations, mappings, samples."""

    def __init__(self, data):
        self.strings, self.types, self.samples = [], [], []
        self.functions, self.locations, self.mappings = {}, {}, {}
        self.period = self.time_nanos = self.duration_nanos = self.default_type = 0
        raw = {}
        for num, value in _fields(data):
            raw.setdefault(num, []).append(value)
        self.strings = [s.decode("utf-8") for s in raw.get(6, [])]  # strict: valid UTF-8
        assert self.strings and self.strings[0] == "", "string_table[0] must be ''"
        s = self.strings
        for vt in raw.get(1, []):
            f = dict(_fields(vt))
            self.types.append((s[f.get(1, 0)], s[f.get(2, 0)]))
        for m in raw.get(3, []):
            f = dict(_fields(m))
            self.mappings[f[1]] = s[f.get(5, 0)]
        for fn in raw.get(5, []):
            f = dict(_fields(fn))
            self.functions[f[1]] = (s[f.get(2, 0)], s[f.get(4, 0)])
        for loc in raw.get(4, []):
            f = list(_fields(loc))
            lines = [dict(_fields(v)) for n, v in f if n == 4]
            assert len(lines) == 1, "one Line per location"
            ident = [v for n, v in f if n == 1][0]
            mapping = ([v for n, v in f if n == 2] or [0])[0]
            self.locations[ident] = (self.functions[lines[0][1]], lines[0].get(2, 0), mapping)
        for sample in raw.get(2, []):
            locs, values, labels = [], [], {}
            for num, value in _fields(sample):
                if num == 1:
                    locs += _ints(value)
                elif num == 2:
                    values += _ints(value)
                elif num == 3:
                    f = dict(_fields(value))
                    labels[s[f[1]]] = s[f[2]] if 2 in f else f.get(3, 0)
            assert len(values) == len(self.types), "a value per sample type"
            self.samples.append((locs, values, labels))
        self.period = raw.get(12, [0])[0]
        self.time_nanos = raw.get(9, [0])[0]
        self.duration_nanos = raw.get(10, [0])[0]
        self.default_type = s[raw.get(14, [0])[0]]

    def stack(self, sample):
        """The function names of a sample, leaf first."""
        return [self.locations[i][0][0] for i in sample[0]]


def read_pprof(path):
    with open(str(path), "rb") as f:
        data = f.read()
    assert data[:2] == b"\x1f\x8b", "not gzipped"
    return Pprof(gzip.decompress(data))


def wrote(result, fmt):
    """The sample count crux printed for the file it wrote."""
    m = WROTE_RE.search(result.stderr)
    assert m and m.group(1) == fmt, result.describe()
    return int(m.group(2))


def as_read(text):
    """A str as crux's reader takes it from the target (src/cpython/pystr.c): U+FFFD for a
    lone surrogate, '?' for a control character (a newline in a name would break the text
    formats)."""
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    return re.sub("[\x00-\x1f\x7f-\x9f]", "?", text)


def hostile_truth(truth):
    """[(name, file)] as crux writes them, from hostile_names.py's truth."""
    return [(as_read(ast.literal_eval(n)), as_read(ast.literal_eval(f)))
            for n, f in truth["functions"]]


# -- go tool pprof ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def go():
    path = shutil.which("go")
    if not path:
        pytest.skip("go is not installed (apt-get install golang-go): go tool pprof reads "
                    "the files")
    return path


def pprof_tool(go, *args):
    proc = subprocess.run([go, "tool", "pprof"] + [str(a) for a in args], capture_output=True,
                          timeout=120)
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, "go tool pprof %s: %s\n%s" % (
        " ".join(str(a) for a in args), proc.stderr.decode("utf-8", "replace")[-2000:], out)
    return out


TOP_RE = re.compile(r"^\s*(\d+)\s+[\d.]+%\s+[\d.]+%\s+(\d+)\s+[\d.]+%\s+(.*)$")


def parse_top(text):
    """{function: (flat, cum)} from -top with -sample_index=samples."""
    return dict((m.group(3), (int(m.group(1)), int(m.group(2))))
                for m in map(TOP_RE.match, text.splitlines()) if m)


def parse_traces(text):
    """[(count, {label: value}, [functions leaf first])] from -traces -sample_index=samples."""
    traces = []
    for block in re.split(r"^-+\+-+$", text, flags=re.M)[1:]:
        if not block.strip():
            continue  # after the last separator
        labels, frames, count = {}, [], None
        for line in block.splitlines():
            if not line.strip():
                continue
            m = re.match(r"^\s+(\d+)\s+(\S.*)$", line)
            if count is None and m:
                count = int(m.group(1))
                frames.append(m.group(2))
            elif count is None:
                key, _, value = line.strip().partition(":")
                labels[key] = value.strip()
            else:
                frames.append(line.strip())
        assert count is not None, "trace without a count: %r" % block[:300]
        traces.append((count, labels, frames))
    return traces


def parse_tags(text):
    """{label: {value: count}} from -tags -sample_index=samples."""
    tags, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^\s*(\w+): Total ([\d.]+)\s*$", line)
        if m:
            current = tags.setdefault(m.group(1), {})
            continue
        m = re.match(r"^\s*([\d.]+) \(\s*[\d.]+%\): (.*)$", line)
        if m and current is not None:
            current[m.group(2)] = int(float(m.group(1)))
    return tags


# -- tests --------------------------------------------------------------------------------------

def record_work(crux, interp, out, *options, save=None, agent=True):
    argv, truth = crux.target_argv(interp, "export_work.py")
    env = target_env()
    if agent:
        env["PYTHONPATH"] = "%s:%s" % (agent_dir(interp.id), TARGETS)
    extra = ["--save", crux.tmp / save] if save else []
    path = crux.tmp / out
    result = crux.run("record", "--rate", RATE, *options, *extra, "-o", path, "--", *argv,
                      env=env)
    assert result.returncode == 0, result.describe()
    with open(str(truth), encoding="utf-8") as f:
        return path, json.load(f), result


def test_pprof_counts_functions_and_labels(crux, interp, go):
    path, truth, result = record_work(crux, interp, "out.pb.gz", "--threads", "--idle",
                                      save="run.db")
    n = wrote(result, "pprof")
    main_tid, bg_tid = truth["tids"]["main"], truth["tids"]["bg"]

    prof = read_pprof(path)
    assert prof.types[:2] == [("samples", "count"), ("wall", "nanoseconds")], prof.types
    assert prof.default_type == "wall" and prof.period == PERIOD_NS, (prof.default_type,
                                                                      prof.period)
    assert prof.duration_nanos > 10 ** 9 and prof.time_nanos > 1.6e18, "times from the run"
    assert sum(s[1][0] for s in prof.samples) == n, "the samples crux reported"
    assert all(s[1][1] == s[1][0] * PERIOD_NS for s in prof.samples), "wall = count x period"
    names = set(name for name, _ in prof.functions.values())
    assert {"tokenize_text", "score_batch", "handle_request", "background_poll"} <= names, names
    assert "thread" not in names, "thread frames are labels, not functions"
    # A sample's thread_id is left out when the reader had no TID for it (on 3.8-3.10 a
    # thread state can be seen before its thread sets native_thread_id): rare.
    no_tid = sum(s[1][0] for s in prof.samples if "thread_id" not in s[2])
    assert no_tid <= 0.05 * n, "%d of %d samples without thread_id" % (no_tid, n)
    # The thread label is the thread's name: its Python name, or its OS name in the samples
    # taken before the target imported threading or before crux read the registry.
    py_names = {main_tid: "MainThread", bg_tid: "bg_worker"}
    named = 0
    for s in prof.samples:
        assert s[2].get("thread_id", main_tid) in (main_tid, bg_tid), (s[2], prof.stack(s))
        label = s[2].get("thread")
        assert s[2].get("pid") == truth["pid"] and label, s[2]
        tid = s[2].get("thread_id")
        assert label == py_names.get(tid) or label not in py_names.values(), s[2]
        named += s[1][0] if label == py_names.get(tid) else 0
    assert named >= 0.8 * n, "%d of %d samples under the threads' Python names" % (named, n)
    if prof.types[2:] == [("cpu", "nanoseconds")]:
        # cpu: the thread was running (on CPU or runnable, /proc state R). The sleeper is
        # runnable only between a wake-up and the GIL (often, on a busy 2-core machine).
        def times(fn):
            picked = [s[1] for s in prof.samples if prof.stack(s)[0] == fn]
            return sum(v[2] for v in picked), sum(v[1] for v in picked)
        cpu, wall = times("tokenize_text")
        assert cpu >= 0.8 * wall, "tokenize_text: cpu %d of wall %d" % (cpu, wall)
        cpu, wall = times("background_poll")
        assert cpu <= 0.6 * wall, "background_poll: cpu %d of wall %d" % (cpu, wall)

    # go tool pprof: the hot functions, counts that add up, the labels
    top = parse_top(pprof_tool(go, "-top", "-nodecount=50", "-sample_index=samples", path))
    for name in ("tokenize_text", "score_batch", "background_poll"):
        assert top.get(name, (0, 0))[0] > 0, "%s missing from -top: %s" % (name, top)
    assert top["tokenize_text"][0] > top["score_batch"][0], top
    assert top["handle_request"][1] >= top["tokenize_text"][0] + top["score_batch"][0], top
    traces = parse_traces(pprof_tool(go, "-traces", "-sample_index=samples", path))
    assert sum(c for c, _, _ in traces) == n, "traces add up to %d, crux wrote %d" % (
        sum(c for c, _, _ in traces), n)
    leaves = [frames[0] for _, _, frames in traces]
    assert "tokenize_text" in leaves and "background_poll" not in [f[-1] for _, _, f in traces]
    tags = parse_tags(pprof_tool(go, "-tags", "-sample_index=samples", path))
    assert set(tags["thread_id"]) == {str(main_tid), str(bg_tid)}, tags["thread_id"]
    assert sum(tags["thread_id"].values()) == n - no_tid, tags["thread_id"]
    assert tags["pid"] == {str(truth["pid"]): n}, tags["pid"]
    assert sum(tags["thread"].values()) == n, tags["thread"]
    assert {"MainThread", "bg_worker"} <= set(tags["thread"]), tags["thread"]
    if "category" in tags:  # perf events may be unavailable: then no categories
        assert "system" in tags["category"], tags["category"]
        assert set(tags["category"]) <= {"python", "native", "system", "gil", "cpu"}, tags
    if truth["staged"]:
        stages = tags.get("stage", {})
        assert stages.get("tokenize", 0) > stages.get("score", 0) > 0, stages

    # the same file from the saved recording
    again = crux.tmp / "again.pb.gz"
    rep = crux.run("report", crux.tmp / "run.db", "-o", again)
    assert rep.returncode == 0, rep.describe()
    assert gzip.decompress(again.read_bytes()) == gzip.decompress(path.read_bytes()), \
        "crux report wrote another profile than crux record"
    assert parse_top(pprof_tool(go, "-top", "-nodecount=50", "-sample_index=samples",
                                again)) == top


def test_pprof_format_flag(crux, one_interp):
    """--format pprof whatever the extension; from per-stack counts when samples are not
    kept (a recording saved without them still exports)."""
    path, _, result = record_work(crux, one_interp, "profile.data", "--format", "pprof",
                                  agent=False)
    prof = read_pprof(path)
    assert sum(s[1][0] for s in prof.samples) == wrote(result, "pprof")
    assert "tokenize_text" in set(n for n, _ in prof.functions.values())


def test_pprof_hostile_names(crux, interp, go):
    result, path, truth_path = crux.record(interp, "hostile_names.py",
                                           options=["--rate", RATE], out="names.pb.gz")
    assert result.returncode == 0, result.describe()
    with open(str(truth_path), encoding="utf-8") as f:
        want = hostile_truth(json.load(f))
    prof = read_pprof(path)
    functions = set(prof.functions.values())
    for name, file in want:
        assert (name, file) in functions, "%r (%r) missing: %s" % (name, file, functions)
    # go tool pprof reads the file and shows the names as they are
    top = pprof_tool(go, "-top", "-nodecount=50", path)
    for name, _ in want:
        assert name in top, "%r missing from go tool pprof -top:\n%s" % (name, top)
    raw = pprof_tool(go, "-raw", path)
    assert "<script>alert(2)</script>&<b>.py" in raw, raw[:3000]


def test_pprof_native_frames_in_library_mappings(crux, one_interp):
    """--native: deflate and its neighbours are functions in a libz mapping, leafward of the
    Python frame that called them; pstats keys them as cProfile keys built-ins."""
    result, path, _ = crux.record(one_interp, "native_zlib.py", "--duration", "1.5",
                                  options=["--native", "--rate", RATE], out="native.pb.gz")
    assert result.returncode == 0, result.describe()
    prof = read_pprof(path)
    libz = set(i for i, f in prof.mappings.items() if "libz" in f)
    assert libz, "no libz mapping: %s" % prof.mappings
    under = 0
    for s in prof.samples:
        maps = [prof.locations[i][2] for i in s[0]]
        names = prof.stack(s)
        if any(m in libz for m in maps):
            z = min(k for k, m in enumerate(maps) if m in libz)
            assert "compress_loop" in names[z:], "libz not under compress_loop: %s" % names
            assert all(prof.locations[i][1] == 0 for i, m in zip(s[0], maps) if m), \
                "native frames have no line"
            under += s[1][0]
    # most of the program is deflate; a loaded machine lets other frames take some samples
    assert under >= 0.3 * sum(s[1][0] for s in prof.samples), under
    assert any(n.startswith("deflate") and f and "libz" in f
               for n, f in prof.functions.values()), "deflate's function names its library"
    go = shutil.which("go")
    if go:
        assert "deflate" in pprof_tool(go, "-top", "-nodecount=30", path)
    stats = crux.tmp / "native.pstats"
    rep = crux.run("record", "--native", "--rate", RATE, "-o", stats, "--",
                   *crux.target_argv(one_interp, "native_zlib.py", "--duration", "1")[0])
    assert rep.returncode == 0, rep.describe()
    code = ("import pstats, sys; st = pstats.Stats(sys.argv[1]); "
            "print(sorted(k[2] for k in st.stats if k[:2] == ('~', 0))[:50])")
    proc = subprocess.run([one_interp.path, "-c", code, str(stats)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "<deflate" in proc.stdout, proc.stdout
