"""Functions with hostile names, for output escaping.

Code objects are compiled under odd file names and renamed with
code.replace(co_name=..., co_qualname=...) (co_qualname exists on 3.11+):
one named like an HTML script tag, one containing the collapsed format's
separators (';' and a newline). The main thread alternates between them.
"""
import sys
import time
import types

from _harness import parse_args, write_truth

XSS_NAME = "<script>alert(1)</script>"
XSS_FILE = "<script>alert(2)</script>&<weird>.py"
SEP_NAME = "semi;colon\nnew line"
SEP_FILE = "<semi;file>.py"

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
    args = parse_args(__doc__.splitlines()[0])
    xss = make_function(XSS_NAME, XSS_FILE)
    sep = make_function(SEP_NAME, SEP_FILE)
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        xss(0.02)
        sep(0.02)
    write_truth(args.truth, {
        "xss": {"name": xss.__code__.co_name, "file": xss.__code__.co_filename},
        "sep": {"name": sep.__code__.co_name, "file": sep.__code__.co_filename},
    })


if __name__ == "__main__":
    main()
