"""Runs a target under sys.settrace and writes every stack it had, in collapsed format.

    PYTHON trust_trace.py OUT.txt TARGET.py [TARGET ARGS...]

The interpreter's own view of the target's stacks: at every trace event (call, line,
return, exception) of a target frame in every thread, and at each call from a target
frame into another file, the current frame chain is read with f_back, named as
profilers name frames (co_name before 3.11, co_qualname from 3.11) with the line each
frame is at (f_lineno), and counted. test_trust_check.py feeds the result to
trust_check.py, which must find every one of these stacks possible: they are the legal
stacks, measured rather than imagined. Frames of this file and of runpy above the
target's module body are left out, so the stacks start where `python TARGET.py` starts.
Runs on CPython 3.8 and later; keep the syntax that old.
"""
import collections
import os
import runpy
import sys
import threading

HERE = os.path.abspath(__file__)
# frames of this file and runpy sit above the target's module body: left out
SKIP = set([HERE, runpy.__file__, runpy.__file__.replace(".pyc", ".py"), "<frozen runpy>"])


def frame_name(code):
    return getattr(code, "co_qualname", code.co_name)


def main():
    out_path, target = sys.argv[1], os.path.abspath(sys.argv[2])
    # A stack is a node: (parent node, code, line) interned to an int, so that an event
    # costs O(1) however deep the stack. A frame's parent node is fixed while the frame
    # runs (its caller waits at one line) and is taken again at each 'call' event (a
    # generator's caller changes between resumptions).
    ids = {}
    nodes = [None]  # node 0: above the target's root
    counts = collections.Counter()
    parent_of = {}  # id(frame) -> its parent node

    def node_of(frame):
        if frame is None or frame.f_code.co_filename in SKIP:
            return 0
        pid = parent_of.get(id(frame))
        if pid is None:
            pid = parent_of[id(frame)] = node_of(frame.f_back)
        key = (pid, frame.f_code, frame.f_lineno)
        n = ids.get(key)
        if n is None:
            n = ids[key] = len(nodes)
            nodes.append(key)
        return n

    def tracer(frame, event, arg):
        if event == "call":
            parent_of[id(frame)] = node_of(frame.f_back)
        if frame.f_code.co_filename != target:
            # Another file's frame counts only where a target frame called it; its own
            # lines are not traced (imports and asyncio's internals would add ~10^5
            # stacks that say nothing about the target).
            back = frame.f_back
            if event == "call" and back is not None and back.f_code.co_filename == target:
                counts[node_of(frame)] += 1
            return None
        counts[node_of(frame)] += 1
        return tracer

    sys.argv = [target] + sys.argv[3:]
    sys.path[0] = os.path.dirname(target)
    threading.settrace(tracer)
    sys.settrace(tracer)
    try:
        runpy.run_path(target, run_name="__main__")
    finally:
        sys.settrace(None)
        threading.settrace(None)
    text = {0: ""}
    names = {}

    def text_of(n):
        got = text.get(n)
        if got is None:
            pid, code, line = nodes[n]
            if code not in names:
                names[code] = frame_name(code)
            frame = "%s (%s%s)" % (names[code], code.co_filename,
                                   "" if line is None else ":%d" % line)
            up = text_of(pid)
            got = text[n] = (up + ";" + frame) if up else frame
        return got

    lines = collections.Counter()
    for n, count in counts.items():
        if n:
            lines[text_of(n)] += count
    with open(out_path, "w", encoding="utf-8") as f:
        for stack in sorted(lines):
            f.write("%s %d\n" % (stack, lines[stack]))


if __name__ == "__main__":
    main()
