# SPDX-License-Identifier: MIT
"""Writes the line-table golden file for the running interpreter.

Run it once under each installed CPython, from the repository root:

    for v in 3.8.18 3.9.18 3.10.13 3.11.7 3.12.1 3.13.0; do
        "$(pyenv prefix $v)/bin/python3" tools/gen_linetable_golden.py
    done

It writes tests/golden/linetable/3.X.txt (or the path given as the only argument). The code
objects are every nested code object of a few stdlib modules (compiled from their source
files, so the set depends only on the interpreter version) plus a synthetic module built to
reach the edges of each format: line jumps far beyond one table step in both directions,
bytecode runs longer than one step, lines without a location, no-column entries, large line
numbers, empty functions, lambdas, comprehensions, generators and coroutines.

The expected line at every even byte offset comes from the interpreter's own
PyCode_Addr2Line, called through ctypes, and is cross-checked against an independent
reference: the co_lnotab loop of Objects/codeobject.c on 3.8/3.9, co_lines() on 3.10+
(None there means no line, written as -1). The generator refuses to write anything if the
two disagree.

File format: '#' lines are comments. Every other line is one code object:

    NAME MINOR FIRSTLINENO CODE_BYTES TABLE_HEX LINE_AT_MINUS_2 EXPECTED...

TABLE_HEX is '-' for an empty table. EXPECTED lists the line at byte offsets 0, 2, 4, ...
up to CODE_BYTES, one entry per offset, where 'L*K' stands for K consecutive offsets at
line L (run-length coding keeps the files small; the reader expands it).

On 3.11+ EXPECTED is followed by '|' and the start column at the same offsets, 1-based
(CPython's 0-based col_offset + 1; 0 where the entry has no column or no location), from
PyCode_Addr2Location and cross-checked against co_positions().
"""

import ast
import ctypes
import importlib.util
import os
import sys

MODULES = ["textwrap", "json.decoder", "dataclasses"]
MAX_PER_MODULE = 120  # cap per source so that the files stay small

_addr2line = ctypes.pythonapi.PyCode_Addr2Line
_addr2line.restype = ctypes.c_int
_addr2line.argtypes = [ctypes.py_object, ctypes.c_int]
if sys.version_info >= (3, 11):
    _addr2loc = ctypes.pythonapi.PyCode_Addr2Location
    _addr2loc.restype = ctypes.c_int
    _addr2loc.argtypes = [ctypes.py_object, ctypes.c_int] + [ctypes.POINTER(ctypes.c_int)] * 4


def synthetic_source():
    """Returns the source of a module that stresses every line-table format."""
    parts = []
    add = parts.append
    add("def empty():\n    pass\n\n")
    add('def empty_doc():\n    """Only a docstring."""\n\n')
    add("lam = lambda x: x + 1\n")
    add("lam2 = lambda: (yield)\n\n")
    add(
        "def comps(xs):\n"
        "    a = [x for x in xs if x]\n"
        "    b = {x: x for x in xs}\n"
        "    c = {x for x in xs}\n"
        "    d = (x * 2\n"
        "         for x in xs\n"
        "         if x)\n"
        "    return a, b, c, list(d)\n\n"
    )
    add(
        "def gen(n):\n"
        "    for i in range(n):\n"
        "        yield i\n"
        "    yield from range(n)\n\n"
    )
    add(
        "async def coro(x):\n"
        "    await x\n"
        "    async for y in x:\n"
        "        pass\n"
        "    async with x as z:\n"
        "        return [w async for w in z]\n\n"
    )
    add(
        "def handlers(f):\n"
        "    try:\n"
        "        f()\n"
        "    except ValueError as e:\n"
        "        print(e)\n"
        "    except (KeyError, TypeError):\n"
        "        raise\n"
        "    else:\n"
        "        return 1\n"
        "    finally:\n"
        "        f()\n"
        "    with open(f) as g, open(g) as h:\n"
        "        return h\n\n"
    )
    # Forward jumps of more than 255 lines (several table steps), one far past 65535 so that
    # the 3.11 signed varint needs three 6-bit groups.
    add("def jumps():\n    a = 1\n" + "\n" * 300 + "    b = 2\n" + "\n" * 5000 + "    c = 3\n")
    add("    d = 4\n" + "\n" * 70000 + "    return a + b + c + d\n\n")
    # Backward jumps of more than 127 lines: the call instruction goes back to the line of
    # the callee after its arguments, a loop's jump back goes to its head.
    add("def back(f, x):\n    r = f(\n" + "\n" * 300 + "        x,\n" + "\n" * 200 + "        x)\n")
    add("    for i in range(3):\n" + "\n" * 400 + "        r += i\n")
    add("    s = (x +\n" + "\n" * 150 + "         x).bit_length(\n" + "\n" * 140 + "    )\n")
    add("    return r, s\n\n")
    add("def dec(f):\n    return f\n\n")
    add("@dec\n" + "# pad\n" * 300 + "@dec\n" + "# pad\n" * 200 + "def decorated():\n")
    add("    return 1\n\n")
    add("@dec\n" + "# pad\n" * 130 + "class Decorated:\n    x = 1\n    def m(self):\n")
    add("        return self.x\n\n")
    # More than 255 bytes of bytecode on one line, then on consecutive lines.
    add("def wide(a):\n    x = [" + ", ".join("a" for _ in range(300)) + "]\n")
    add("    y = {" + ", ".join("a%d: %d" % (i % 7, i) for i in range(200)) + "}\n")
    add("    return x, y\n\n")
    # A very long function: about 4 KB of bytecode and hundreds of line changes.
    body = "".join("    v%d = v%d + %d\n" % (i, i - 1, i) for i in range(1, 400))
    add("def long(v0):\n" + body + "    return v399\n\n")
    add("class Cls:\n    attr = [i for i in range(3)]\n    def meth(self):\n")
    add("        return lambda: self\n")
    return "".join(parts)


def nocolumn_code():
    """Returns code compiled from an AST whose nodes have no columns (3.11+ NO_COLUMNS)."""
    src = "def nocol(a):\n    b = a + 1\n" + "\n" * 200 + "    return b\n"
    tree = ast.parse(src)
    for node in ast.walk(tree):
        if hasattr(node, "col_offset"):
            node.col_offset = -1
            node.end_col_offset = -1
    return compile(tree, "<nocol>", "exec")


def walk(code, prefix, out):
    """Appends (name, code) for `code` and every nested code object, depth first."""
    name = getattr(code, "co_qualname", code.co_name)
    out.append((prefix + name, code))
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            walk(c, prefix, out)


def sources():
    """Returns [(label, module code)] in a fixed order."""
    result = []
    for mod in MODULES:
        path = importlib.util.find_spec(mod).origin
        with open(path, encoding="utf-8") as f:
            result.append((mod, compile(f.read(), path, "exec")))
    result.append(("synth", compile(synthetic_source(), "<synth>", "exec")))
    result.append(("nocol", nocolumn_code()))
    return result


def table(code):
    """Returns the raw line table of `code` for this version."""
    if sys.version_info >= (3, 10):
        return code.co_linetable
    return code.co_lnotab


def lnotab_reference(code, b):
    """PyCode_Addr2Line of 3.8/3.9 (Objects/codeobject.c), transcribed."""
    tab = code.co_lnotab
    line = code.co_firstlineno
    addr = 0
    for i in range(0, len(tab) - 1, 2):
        addr += tab[i]
        if addr > b:
            break
        incr = tab[i + 1]
        line += incr - 256 if incr >= 128 else incr
    return line


def reference_lines(code):
    """Returns the line at each even offset from a reference independent of PyCode_Addr2Line."""
    n = len(code.co_code)
    if sys.version_info < (3, 10):
        return [lnotab_reference(code, b) for b in range(0, n, 2)]
    lines = [-1] * (n // 2)
    for start, end, line in code.co_lines():
        for b in range(start, end):
            if b % 2 == 0 and b < n:
                lines[b // 2] = -1 if line is None else line
    return lines


def columns(code):
    """Returns the 1-based start column at each even offset (0 = none), 3.11+."""
    got = []
    for b in range(0, len(code.co_code), 2):
        out = [ctypes.c_int() for _ in range(4)]
        _addr2loc(code, b, *[ctypes.byref(x) for x in out])
        got.append(out[1].value + 1 if out[1].value >= 0 else 0)
    ref = [(c + 1 if c is not None and c >= 0 else 0) for _, _, c, _ in code.co_positions()]
    if got != ref[: len(got)]:
        sys.exit("%s: PyCode_Addr2Location and co_positions() disagree" % code.co_name)
    return got


def rle(values):
    """Returns 'L' / 'L*K' tokens for `values`."""
    tokens = []
    i = 0
    while i < len(values):
        j = i
        while j < len(values) and values[j] == values[i]:
            j += 1
        tokens.append(str(values[i]) if j - i == 1 else "%d*%d" % (values[i], j - i))
        i = j
    return " ".join(tokens)


def main():
    minor = sys.version_info[1]
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/golden/linetable/3.%d.txt" % minor
    rows = []
    offsets = 0
    for label, module in sources():
        objs = []
        walk(module, label + ":", objs)
        for name, code in objs[:MAX_PER_MODULE]:
            n = len(code.co_code)
            got = [_addr2line(code, b) for b in range(0, n, 2)]
            ref = reference_lines(code)
            if got != ref:
                sys.exit("%s: PyCode_Addr2Line and the reference disagree" % name)
            neg = _addr2line(code, -2)
            if neg != code.co_firstlineno:
                sys.exit("%s: line at -2 is %d, not co_firstlineno" % (name, neg))
            hexs = table(code).hex() or "-"
            row = "%s %d %d %d %s %d %s" % (name, minor, code.co_firstlineno, n, hexs, neg, rle(got))
            if minor >= 11:
                row += " | " + rle(columns(code))
            rows.append(row)
            offsets += len(got) + 1
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with open(out_path, "w", encoding="ascii") as f:
        f.write("# crux line-table golden for CPython %s\n" % sys.version.split()[0])
        f.write("# written by tools/gen_linetable_golden.py; format in its docstring\n")
        f.write("# %d code objects, %d offsets\n" % (len(rows), offsets))
        for row in rows:
            f.write(row + "\n")
    print("%s: %d code objects, %d offsets" % (out_path, len(rows), offsets))


if __name__ == "__main__":
    main()
