"""Functions with hostile names and file names, for the pprof and pstats exports.

Each function is compiled under a hostile file name and renamed with code.replace
(co_qualname too on 3.11+): quotes, an HTML script tag, a newline and the collapsed
format's ';', backslashes, non-ASCII text, and a lone surrogate (a str that UTF-8 cannot
encode: crux's reader writes U+FFFD for it, and "?" for a control character such as the
newline). The main thread calls them in turn. The truth holds ascii() of each name and
file, since a lone surrogate cannot go into UTF-8 JSON.
"""
import sys
import time
import types

from _harness import parse_args, write_truth

NAMES = [
    ("say \"hi\" it's", "quote\"d'.py"),
    ("<script>alert(1)</script>", "<script>alert(2)</script>&<b>.py"),
    ("new\nline;semi colon", "new\nline;semi.py"),
    ("back\\slash\\", "C:\\dir\\back.py"),
    ("caf\u00e9_\u03bb_\u95a2\u6570", "donn\u00e9es_\u6d4b\u8bd5.py"),
    ("lone\udcffsurrogate", "surrogate.py"),
]

SOURCE = """
def placeholder(slice_s):
    end = perf_counter() + slice_s
    n = 0
    while perf_counter() < end:
        n += 1
    return n
"""


def make_function(name, filename):
    namespace = {"perf_counter": time.perf_counter}
    exec(compile(SOURCE, filename, "exec"), namespace)
    code = namespace["placeholder"].__code__
    if sys.version_info >= (3, 11):
        code = code.replace(co_name=name, co_qualname=name)
    else:
        code = code.replace(co_name=name)
    return types.FunctionType(code, namespace, name)


def main():
    args = parse_args(__doc__.splitlines()[0], duration=1.5)
    functions = [make_function(n, f) for n, f in NAMES]
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        for fn in functions:
            fn(0.01)
    write_truth(args.truth, {"functions": [[ascii(n), ascii(f)] for n, f in NAMES]})


if __name__ == "__main__":
    main()
