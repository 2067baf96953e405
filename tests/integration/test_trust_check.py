"""The trust checker itself (trust_check.py), without crux: it must fail impossible stacks
and pass every stack the targets really have.

- hand-written stacks of targets/trust/churn.py and mix.py, legal and impossible, per
  naming convention (co_name on 3.8-3.10, co_qualname on 3.11+), comprehensions (frames
  before 3.12, inlined after), shims, foreign frames, lines;
- mutations of the stacks the interpreter really had (swap a frame for its same-shaped
  twin, move a caller's line): every one that is not itself a real stack is flagged;
- for every interpreter: the checker's code objects (names, qualnames, first lines)
  equal those the interpreter compiles, and every stack the target has under
  sys.settrace (trust_trace.py) is judged possible.
"""
import collections
import json
import os
import subprocess
import sys

import pytest

from conftest import TARGETS, target_env
import trust_check as tc

HERE = os.path.dirname(os.path.abspath(__file__))
CHURN = os.path.join(str(TARGETS), "trust", "churn.py")
MIX = os.path.join(str(TARGETS), "trust", "mix.py")
THREADING = "/usr/lib/python3.11/threading.py"
ASYNCIO = "/usr/lib/python3.11/asyncio/events.py"


def line_of(path, text, nth=1, within=""):
    """The line number of the nth line of path that holds text, searching from the
    definition of `within` (a qualname: 'Klass.meth', 'outer.<locals>.inner')."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = 0
    for part in within.replace(".<locals>", "").split("."):
        if not part or part.startswith("<"):
            continue
        for i in range(start, len(lines)):
            words = lines[i].strip().replace("(", " ").replace(":", " ").split()
            if words[:2] in (["def", part], ["class", part]) or words[:3] == ["async", "def", part]:
                start = i
                break
        else:
            raise AssertionError("no definition of %r in %s" % (part, path))
    seen = 0
    for i in range(start, len(lines)):
        if text in lines[i]:
            seen += 1
            if seen == nth:
                return i + 1
    raise AssertionError("%r not in %s after %r" % (text, path, within))


def stack(path, *specs, **kw):
    """Frames from 'qualname@text' (first line holding text, from the definition of
    qualname on; 'qualname@text#2': the second), 'qualname@=N' (line N), 'qualname@' (no
    line), or ('name', 'other path', line) for a foreign frame. version=(3, X) names the
    frames as that version's profilers do (bare co_name before 3.11)."""
    version = kw.get("version", (3, 11))
    frames = []
    for spec in specs:
        if isinstance(spec, tuple):
            frames.append(spec)
            continue
        name, _, where = spec.partition("@")
        shown = q(version, name)
        if where == "":
            frames.append((shown, path, None))
        elif where.startswith("="):
            frames.append((shown, path, int(where[1:])))
        else:
            text, _, nth = where.partition("#")
            within = "" if name == "<module>" else name
            frames.append((shown, path, line_of(path, text, int(nth or 1), within)))
    return tuple(frames)


def q(version, qualname):
    """The frame name a profiler shows for qualname on version."""
    if version >= (3, 11):
        return qualname
    if qualname.startswith("<") or "." not in qualname:
        return qualname
    return qualname.split(".")[-1]


def verdict(model, frames):
    return model.check(frames)[0]


def assert_possible(model, frames):
    v, why = model.check(frames)
    assert v in ("ok", "noline"), "flagged a legal stack (%s): %s" % (why, tc.format_stack(frames))


def assert_impossible(model, frames):
    v, _ = model.check(frames)
    assert v == "impossible", "missed an impossible stack: %s" % tc.format_stack(frames)


MODULE_MAIN = ("<module>@    main()", "main@    rounds = run(")
THREAD_ROOT = (("Thread._bootstrap", THREADING, 995), ("Thread._bootstrap_inner", THREADING, 1038),
               ("Thread.run", THREADING, 975))


# -- hand-written stacks: churn ----------------------------------------------------------

@pytest.fixture(scope="module", params=[(3, 8), (3, 11), (3, 12), (3, 13)], ids=str)
def churn(request):
    return tc.Model(CHURN, request.param)


def test_churn_legal_paths(churn):
    legal = [
        MODULE_MAIN + ("run@alpha(i)", "alpha@return beta(x)", "beta@return gamma(x)",
                       "gamma@    return x + 1"),
        MODULE_MAIN + ("run@delta(i)", "delta@return epsilon(x)", "epsilon@return x * 2"),
        MODULE_MAIN + ("run@twins(10)", "twins@total += twin_b(i)", "twin_b@return mid_b(x)",
                       "mid_b@return leaf_b(x)", "leaf_b@return x + 3"),
        MODULE_MAIN + ("run@ping(40)", "ping@return pong(n - 1)", "pong@return ping(n - 1)",
                       "ping@return pong(n - 1)", "pong@    if n:"),
        MODULE_MAIN + ("run@down(30)", "down@return down(n - 1)", "down@return down(n - 1)",
                       "down@    return 0"),
        MODULE_MAIN + ("run@unwind(20, level)", "unwind@return unwind(n - 1, catch_at) + 1",
                       "unwind@            return unwind(n - 1, catch_at)",
                       "unwind@raise Unwound()"),
        MODULE_MAIN + ("run@while time.perf_counter() < end",),
        MODULE_MAIN,
        # the module body at the root, and a cut stack that starts anywhere
        stack(CHURN, "<module>@def gamma(x)"),
        (("[truncated]", None, None),)
        + stack(CHURN, "down@return down(n - 1)", "down@    return 0"),
    ]
    for spec in legal:
        frames = spec if isinstance(spec[0], tuple) else stack(CHURN, *spec)
        assert_possible(churn, frames)


def test_churn_impossible_paths(churn):
    bad = [
        # the crux issue's example: epsilon never calls gamma
        MODULE_MAIN + ("run@delta(i)", "delta@return epsilon(x)", "epsilon@return x * 2",
                       "gamma@    return x + 1"),
        MODULE_MAIN + ("run@alpha(i)", "alpha@return beta(x)", "epsilon@return x * 2"),
        MODULE_MAIN + ("run@delta(i)", "delta@return epsilon(x)", "beta@return gamma(x)"),
        # same-shaped twins crossed
        MODULE_MAIN + ("run@twins(10)", "twins@total += twin_a(i)", "twin_a@return mid_a(x)",
                       "mid_b@return leaf_b(x)"),
        MODULE_MAIN + ("run@twins(10)", "twins@total += twin_a(i)", "twin_b@return mid_b(x)"),
        # mutual recursion must alternate
        MODULE_MAIN + ("run@ping(40)", "ping@return pong(n - 1)", "ping@return pong(n - 1)"),
        # the chain skips a link
        MODULE_MAIN + ("run@chain_1(rounds)", "chain_1@return chain_2(x)",
                       "chain_3@return chain_4(x)"),
        # a caller at a line that calls nothing / calls someone else
        MODULE_MAIN + ("run@while time.perf_counter() < end", "alpha@return beta(x)"),
        MODULE_MAIN + ("run@delta(i)", "alpha@return beta(x)"),
        MODULE_MAIN + ("run@down(30)", "down@    return 0", "down@    return 0"),
        # a leaf at a line outside its function
        MODULE_MAIN + ("run@alpha(i)", "alpha@return beta(x)", "beta@return gamma(x)",
                       "gamma@return x * 2"),
        # lost root: run() only runs under main()
        stack(CHURN, "run@alpha(i)", "alpha@return beta(x)"),
        # no such function
        MODULE_MAIN + ("run@alpha(i)", "zeta@=1"),
        # a foreign frame below a line that calls nothing outside the file, above one that
        # only runs under a target caller, or a leaf frame without a line above another
        MODULE_MAIN + ("run@alpha(i)", "alpha@return beta(x)", "beta@return gamma(x)",
                       "gamma@    return x + 1", ("sleep", "/usr/lib/python3.11/time.py", 3)),
        stack(CHURN, *MODULE_MAIN) + (("Thread.run", THREADING, 975),)
        + stack(CHURN, "run@alpha(i)"),
        MODULE_MAIN + ("run@", "alpha@return beta(x)"),
    ]
    for spec in bad:
        frames = spec if isinstance(spec[0], tuple) else stack(CHURN, *spec)
        assert_impossible(churn, frames)


def test_relaxed_model_ignores_only_callers_lines():
    model = tc.Model(CHURN, (3, 12))
    relaxed = model.relaxed()
    stale = stack(CHURN, *MODULE_MAIN + ("run@twins(10)", "alpha@return beta(x)"))
    crossed = stack(CHURN, *MODULE_MAIN + ("run@alpha(i)", "alpha@return beta(x)",
                                           "epsilon@return x * 2"))
    outside = stack(CHURN, *MODULE_MAIN + ("run@alpha(i)", "alpha@return x * 2"))
    assert verdict(model, stale) == "impossible"
    assert verdict(relaxed, stale) == "ok"
    assert verdict(relaxed, crossed) == "impossible"
    assert verdict(relaxed, outside) == "impossible"
    rep = tc.check_stacks(model, {stale: 2, crossed: 3})
    assert (rep.impossible, rep.impossible_calls) == (5, 3)


def test_leaf_without_line_depends_on_version():
    frames = stack(CHURN, *MODULE_MAIN + ("run@",))
    assert tc.Model(CHURN, (3, 11)).check(frames)[0] == "noline"
    assert tc.Model(CHURN, (3, 9)).check(frames)[0] == "impossible"


def test_foreign_frames_below_a_calling_line(churn):
    assert_possible(churn, stack(CHURN, *MODULE_MAIN + ("run@while time.perf_counter() < end",))
                    + (("perf_counter_py", "/usr/lib/python3.11/time.py", 3),))
    # importlib frames at the root with no target frame are not judged
    assert churn.check((("_find_and_load", "<frozen importlib._bootstrap>", 1176),))[0] == "foreign"


# -- hand-written stacks: mix ------------------------------------------------------------

@pytest.fixture(scope="module", params=[(3, 8), (3, 10), (3, 11), (3, 12), (3, 13)], ids=str)
def mix(request):
    return tc.Model(MIX, request.param)


def worker_stack(model, *specs):
    return THREAD_ROOT + stack(MIX, "worker@        mixed_round(12)", *specs,
                               version=model.version)


def test_mix_legal(mix):
    v = mix.version
    legal = [
        worker_stack(mix, "mixed_round@use_objects(n)", "use_objects@Scaled(1, 2)",
                     "Scaled.__init__@super().__init__(start)",
                     "Accumulator.__init__@self.steps = 0"),
        worker_stack(mix, "mixed_round@use_objects(n)", "use_objects@scaled.add_many(range(n))",
                     "Accumulator.add_many@self.add(v)",
                     "Scaled.add@return Accumulator.add(self",
                     "Accumulator.add@self.total += value"),
        worker_stack(mix, "mixed_round@use_closures(n)", "use_closures@total += triple(i)",
                     "make_scaler.<locals>.scale@return x * factor"),
        worker_stack(mix, "mixed_round@use_c_calls(n)", "use_c_calls@key=lambda v",
                     "use_c_calls.<locals>.<lambda>@key=lambda v"),
        worker_stack(mix, "mixed_round@use_c_calls(n)", "use_c_calls@key=key_of)",
                     "key_of@return -x"),
        worker_stack(mix, "mixed_round@use_c_calls(n)", "use_c_calls@return sum(map(double",
                     "double@return x * 2"),
        worker_stack(mix, "mixed_round@drive(sum_squares(n))", "drive@coro.send(None)",
                     "sum_squares@total += await square_later(i)",
                     "square_later@await pause()", "pause@    yield"),
        worker_stack(mix, "mixed_round@use_generators(n)",
                     "use_generators@for x in evens(numbers(n))",
                     "evens@for x in source", "numbers@yield i * 3"),
        worker_stack(mix, "mixed_round@use_generators(n)", "use_generators@sum(x * x for",
                     "use_generators.<locals>.<genexpr>@sum(x * x for",
                     "numbers@yield i * 3"),
        worker_stack(mix, "mixed_round@use_generators(n)", "use_generators@avg.send(v)",
                     "averager@total += value"),
        worker_stack(mix, "mixed_round@shield(15, 5)", "shield@return shield(depth - 1, at) + 1",
                     "shield@            return explode(depth)", "explode@raise Boom()"),
        # the asyncio loop's Handle._run resumes a task's coroutine
        stack(MIX, "<module>@    main()", "main@ticks = asyncio.run(")
        + (("run", "/usr/lib/python3.11/asyncio/runners.py", 190),
           ("Handle._run", ASYNCIO, 80))
        + stack(MIX, "ticker@done += await sum_squares(5)",
                "sum_squares@total += await square_later(i)"),
        # foreign frames below an await of asyncio.sleep
        stack(MIX, "<module>@    main()", "main@ticks = asyncio.run(")
        + (("Handle._run", ASYNCIO, 80),) + stack(MIX, "ticker@await asyncio.sleep(0)")
        + (("sleep", "/usr/lib/python3.11/asyncio/tasks.py", 640),),
    ]
    # list comprehensions: a frame before 3.12, inlined from 3.12
    if v >= (3, 12):
        legal.append(worker_stack(mix, "mixed_round@use_generators(n)",
                                  "use_generators@len([y for y in delegate(n)])",
                                  "delegate@yield from numbers(n)", "numbers@yield i * 3"))
    else:
        legal.append(worker_stack(mix, "mixed_round@use_generators(n)",
                                  "use_generators@len([y for y in delegate(n)])",
                                  "use_generators.<locals>.<listcomp>@len([y for y",
                                  "delegate@yield from numbers(n)", "numbers@yield i * 3"))
    # 3.13 runs __init__ under an _Py_InitCleanup shim (py-spy shows it without a line)
    legal.append(worker_stack(mix, "mixed_round@use_objects(n)", "use_objects@Accumulator(0)",
                              ("__init__", "__init__", None),
                              "Accumulator.__init__@self.total = start"))
    for frames in legal:
        assert_possible(mix, frames)


def test_mix_impossible(mix):
    v = mix.version
    bad = [
        # lost the threading frames: worker only runs under Thread.run
        stack(MIX, "worker@        mixed_round(12)", "mixed_round@use_objects(n)", version=v),
        # a generator frame alone at the root (a generator's f_back cleared under the reader)
        stack(MIX, "numbers@yield i * 3", version=v),
        # crossed callers
        worker_stack(mix, "mixed_round@use_closures(n)", "use_c_calls@key=key_of)"),
        worker_stack(mix, "mixed_round@recover(12)", "use_c_calls@key=key_of)"),
        worker_stack(mix, "mixed_round@use_objects(n)", "use_objects@Accumulator(0)",
                     "Scaled.__init__@super().__init__(start)"),
        worker_stack(mix, "mixed_round@use_closures(n)", "use_closures@triple = make_scaler(3)",
                     "make_scaler.<locals>.scale@return x * factor"),
        # a generator resumed where nothing iterates
        worker_stack(mix, "mixed_round@use_generators(n)", "use_generators@acc += x",
                     "numbers@yield i * 3"),
        # a coroutine under a foreign frame, below a line that cannot call out
        stack(MIX, "<module>@    main()", "main@    tids = {}") + (("Handle._run", ASYNCIO, 80),)
        + stack(MIX, "ticker@done += await sum_squares(5)"),
    ]
    if v >= (3, 12):
        bad.append(worker_stack(mix, "mixed_round@use_generators(n)",
                                "use_generators@len([y for y in delegate(n)])",
                                "use_generators.<locals>.<listcomp>@len([y for y"))
    if v >= (3, 11):
        # a 3.11+ profiler must give qualnames
        bad.append(THREAD_ROOT + stack(MIX, "worker@        mixed_round(12)",
                                       "mixed_round@use_closures(n)",
                                       "use_closures@total += triple(i)",
                                       "scale@return x * factor"))
    else:
        bad.append(THREAD_ROOT + stack(MIX, "worker@        mixed_round(12)",
                                       "mixed_round@use_objects(n)", "use_objects@Accumulator(0)",
                                       "Accumulator.__init__@self.total = start"))
    for frames in bad:
        assert_impossible(mix, frames)


def test_names_either_accepts_both():
    m = tc.Model(MIX, (3, 12), names="either")
    for name in ("scale", "make_scaler.<locals>.scale"):
        assert_possible(m, THREAD_ROOT + stack(
            MIX, "worker@        mixed_round(12)", "mixed_round@use_closures(n)",
            "use_closures@total += triple(i)", name + "@return x * factor"))


# -- reading files -----------------------------------------------------------------------

def test_parse_frames():
    assert tc.parse_frame("f (/a/b.py:12)") == ("f", "/a/b.py", 12)
    assert tc.parse_frame("__init__ (__init__)") == ("__init__", "__init__", None)
    assert tc.parse_frame("odd (name) (/a.py:3)") == ("odd (name)", "/a.py", 3)
    assert tc.parse_frame("[truncated]")[1] is None
    assert tc.parse_frame("thread (123)")[1] is None
    assert tc.parse_austin_frame("/a/b.py:K.m:7") == ("K.m", "/a/b.py", 7)
    assert tc.parse_austin_frame("<frozen importlib._bootstrap>:_find_and_load:1176") == (
        "_find_and_load", "<frozen importlib._bootstrap>", 1176)
    assert tc.parse_austin_frame("T0:123")[1] is None


def test_cli_reports_and_fails(tmp_path):
    good = tc.format_stack(stack(CHURN, *MODULE_MAIN + (
        "run@alpha(i)", "alpha@return beta(x)")), short=False)
    bad = tc.format_stack(stack(CHURN, *MODULE_MAIN + (
        "run@delta(i)", "delta@return epsilon(x)", "epsilon@return x * 2",
        "gamma@    return x + 1")), short=False)
    path = tmp_path / "stacks.txt"
    path.write_text("%s 7\n%s 3\n_find_and_load (<frozen importlib._bootstrap>:1176) 2\n"
                    % (good, bad))
    r = subprocess.run([sys.executable, os.path.join(HERE, "trust_check.py"), CHURN, str(path),
                        "--python", "3.12"], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "samples: 12 (10 with target frames, 2 foreign only" in r.stdout, r.stdout
    assert "impossible: 3 (25.00%); ignoring callers' lines: 3" in r.stdout, r.stdout
    assert "epsilon:" in r.stdout and "does not call gamma" in r.stdout, r.stdout
    austin = tmp_path / "austin.txt"
    austin.write_text("# austin: 3.7.0\n\nP1;T0:1;%s 100\nP1;T0:1 100\n"
                      "P1;T0:1;:INVALID:;/x/churn.py:down:136 100\n" % ";".join(
        "%s:%s:%d" % (p, n, l) for n, p, l in stack(CHURN, *MODULE_MAIN + (
            "run@alpha(i)", "alpha@return beta(x)"))))
    r = subprocess.run([sys.executable, os.path.join(HERE, "trust_check.py"), CHURN, str(austin),
                        "--python", "3.8", "--format", "austin", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["samples"] == 1 and data["impossible"] == 0, data
    assert data["tool_marked_invalid"] == 1, data


# -- against the interpreters ------------------------------------------------------------

CODE_OBJECTS = r"""
import json, sys
def walk(co, out):
    out.append([co.co_name, getattr(co, "co_qualname", co.co_name), co.co_firstlineno])
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            walk(c, out)
    return out
with open(sys.argv[1], encoding="utf-8") as f:
    print(json.dumps(walk(compile(f.read(), sys.argv[1], "exec"), [])))
"""


@pytest.mark.parametrize("target", [CHURN, MIX], ids=["churn", "mix"])
def test_code_objects_match_interpreter(interp, target):
    r = subprocess.run([interp.path, "-c", CODE_OBJECTS, target], capture_output=True,
                       text=True, env=target_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    real = sorted(tuple(x) for x in json.loads(r.stdout))
    model = tc.Model(target, interp.version)
    qual = interp.version >= (3, 11)
    mine = sorted((s.name, s.qualname if qual else s.name, s.first) for s in model.scopes)
    assert mine == real


def traced_stacks(interp, target, tmp_path):
    out = tmp_path / ("traced-%s.txt" % os.path.basename(target))
    r = subprocess.run([interp.path, os.path.join(HERE, "trust_trace.py"), str(out), target,
                        "--duration", "0.3", "--truth", str(tmp_path / "truth.json")],
                       capture_output=True, text=True, env=target_env(), timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return tc.read_stacks(str(out))


# functions whose frames a trace must have seen, so that "all legal" is not vacuous
SEEN = {
    CHURN: {"gamma", "epsilon", "leaf_a", "leaf_b", "chain_10", "ping", "pong", "down", "unwind"},
    MIX: {"pause", "ticker", "averager", "delegate", "<genexpr>", "<lambda>", "scale", "key_of",
          "double", "explode", "climb", "__init__", "add_many"},
}


@pytest.mark.parametrize("target", [CHURN, MIX], ids=["churn", "mix"])
def test_traced_stacks_are_possible_and_mutants_are_not(interp, target, tmp_path):
    stacks = traced_stacks(interp, target, tmp_path)
    model = tc.Model(target, interp.version)
    rep = tc.check_stacks(model, stacks)
    assert rep.impossible == 0, "legal stacks flagged:\n" + tc.summary(rep)
    names = set(f[0].split(".")[-1] for s in stacks for f in s if model.is_target_path(f[1]))
    assert SEEN[target] <= names, "the trace missed %s" % (SEEN[target] - names)
    if target != CHURN:
        return
    # every stack of churn with a frame swapped for its twin, or a caller moved one line,
    # is impossible unless the program really had it
    twin = {"alpha": "delta", "delta": "alpha", "beta": "epsilon", "epsilon": "beta",
            "twin_a": "twin_b", "twin_b": "twin_a", "mid_a": "mid_b", "mid_b": "mid_a",
            "leaf_a": "leaf_b", "leaf_b": "leaf_a", "ping": "pong", "pong": "ping",
            "chain_4": "chain_5", "chain_5": "chain_4"}
    first = dict((sc.name, sc.first) for sc in model.scopes)
    real = set(stacks)
    mutants = collections.Counter()
    missed = []
    for frames in stacks:
        for i, (name, path, line) in enumerate(frames):
            if not model.is_target_path(path) or line is None:
                continue
            variants = []
            if name in twin:  # the twin, at the same line of its own body
                variants.append((twin[name], path, line - first[name] + first[twin[name]]))
            below = frames[i + 1] if i + 1 < len(frames) else None
            if below is not None and model.is_target_path(below[1]) and name != "<module>":
                variants.append((name, path, line + 1))
            for v in variants:
                m = frames[:i] + (v,) + frames[i + 1:]
                if m in real:
                    continue
                mutants[m] += 1
                if model.check(m)[0] != "impossible":
                    missed.append(tc.format_stack(m))
    assert len(mutants) > 1000, len(mutants)
    assert not missed, "%d of %d mutants judged possible, e.g. %s" % (
        len(missed), len(mutants), missed[:3])
