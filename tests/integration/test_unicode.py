"""Non-ASCII names: a file `données_测试.py`, a function `café_λ_関数`, a method `Klasse_ü.méthode`.

Names must come out as the interpreter holds them, in UTF-8, in collapsed
output and in `dump --json`. Qualified names exist from 3.11 (co_qualname);
before that only the bare `méthode` is available.
"""
import json

from crux_helpers import RATE, frames_of, load_truth, parse_collapsed

SCRIPT = "données_测试.py"
FUNCTION = "café_λ_関数"


def method_names(interp):
    """Acceptable frame names for Klasse_ü.méthode on this interpreter."""
    if interp.version >= (3, 11):
        return {"Klasse_ü.méthode"}
    return {"méthode", "Klasse_ü.méthode"}


def test_record_non_ascii_names(crux, interp):
    result, out, truth_path = crux.record(interp, SCRIPT, "--duration", "2",
                                          options=["--rate", RATE, "--idle"])
    assert result.returncode == 0, result.describe()
    truth = load_truth(truth_path)
    assert truth["function"] == FUNCTION
    stacks = parse_collapsed(out)  # decodes the file as strict UTF-8
    frames = set(f for s in stacks for f in frames_of(s))
    names = sorted(set(f.name for f in frames))
    cafe = [f for f in frames if f.name == FUNCTION]
    assert cafe, "%s missing; names: %s" % (FUNCTION, names[:50])
    assert all(f.path == truth["file"] for f in cafe), \
        "path %r, interpreter has %r" % (cafe[0].path, truth["file"])
    methods = [f for f in frames if f.name in method_names(interp)]
    assert methods, "Klasse_ü.méthode missing; names: %s" % names[:50]
    assert all(f.path.endswith(SCRIPT) for f in methods), [f.path for f in methods]


def test_dump_non_ascii_names(crux, interp):
    target, _, truth = crux.start_target(interp, SCRIPT, "--duration", "30")
    result = crux.run("dump", "--pid", target.pid, "--json")
    assert result.returncode == 0, result.describe()
    dump = json.loads(result.stdout)
    by_tid = dict((t["tid"], t) for t in dump["threads"])
    main = by_tid.get(truth["main_tid"])
    assert main, "main thread missing: %s" % sorted(by_tid)
    cafe = [f for f in main["frames"] if f["name"] == FUNCTION]
    assert cafe and cafe[0]["file"] == truth["file"], main["frames"]
    helper = by_tid.get(truth["method_tid"])
    assert helper, "méthode thread missing: %s" % sorted(by_tid)
    methods = [f for f in helper["frames"] if f["name"] in method_names(interp)]
    assert methods, [f["name"] for f in helper["frames"]]
    assert methods[0]["file"] == truth["file"]
    assert methods[0]["line"] == truth["method_line"], methods[0]
