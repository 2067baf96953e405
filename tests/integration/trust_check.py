#!/usr/bin/env python3
"""trust_check: which of a profiler's stacks are impossible for a given target program?

A sampling profiler that reads a running interpreter without stopping it can copy a
stack while the program changes it, and report a stack the program never had. This
checker derives, from the target's source (its AST), which frames may call which at
which line, and checks every sampled stack against that. It knows nothing of crux: it
reads collapsed stacks (crux -f collapsed, py-spy -f raw) and Austin's format.

    python3 trust_check.py TARGET.py STACKS.txt --truth TRUTH.json   # or --python 3.12
    python3 trust_check.py TARGET.py austin.txt --format austin --python 3.11 --json

Exit status: 0 when every stack is possible, 1 when some are not, 2 on bad input.

The model (see docs/testing.md, "Trust harness", for the same rules in prose)
------------------------------------------------------------------------------
Scopes. Every code object of the target is a scope: the module body, class bodies,
functions, lambdas, generator expressions, and list/set/dict comprehensions before
3.12 (3.12+ inlines those into the enclosing code: no frame, their lines belong to
it). A frame is named `co_name` on 3.8-3.10 and `co_qualname` on 3.11+
(`Klass.meth`, `outer.<locals>.inner`, `f.<locals>.<genexpr>`); --names overrides.
A frame matches the scopes of that name whose own lines hold the frame's line (own
lines: the scope's span, first decorator included, less the bodies of functions and
classes nested in it). Names that several scopes share are resolved by line, and
where the line does not decide, every candidate is followed.

Edges. A target frame S at line L may have target frame G right below it when L lies
in a *site* of S that admits G:
- a call whose callee expression names G (`g(...)`, `obj.g(...)`); calling a class
  admits its (or its target bases') `__init__`/`__new__`; a call of a decorated
  function also admits whatever the decorator returned (as an indirect call does);
- an indirect call (callee not a target name: `fn(x)`, `self.cb()`, `map(...)`,
  `sorted(key=...)`, `next(g)`, `g.send(v)`) admits every *escaping* scope (a
  function whose name is used as a value anywhere in the file, e.g. `target=worker`,
  `map(f, ...)`, `return inner`; every lambda; decorated functions; methods of
  classes with a base from outside the file), every `__init__`/`__new__`, and every
  generator-kind scope (generator and coroutine functions, async generators,
  generator expressions): C code may resume a generator;
- a generator or coroutine is resumed where the program iterates or awaits:
  `for`/`async for` headers, comprehension clauses, `await`, `yield from` admit every
  generator-kind scope (the AST cannot tell which generator object flows where: this
  is the one deliberate over-approximation of the edges);
- dunder methods other than `__init__`/`__new__` (`__iter__`, `__exit__`, `__del__`,
  `__eq__`, ...) may run below any line of any scope (operators, GC);
- a `class` statement admits its class body; a list/set/dict comprehension before
  3.12 is admitted at its own span; an attribute access admits a `@property` of that
  name.
Names are resolved by name, not by binding: `obj.add(...)` admits every function or
method called `add` in the file (and a shadowed name is not noticed).
Line spans of sites: 3.10+ report a call at a line of the call expression; 3.8/3.9
may report any line of the enclosing statement's header (the old compiler attributes
an instruction to the highest line compiled so far), so sites there widen to it.

Foreign frames (any file other than the target: threading.py, asyncio, importlib,
_harness.py, ...). Stacks with no target frame are counted apart and not judged.
Otherwise:
- root: when no foreign frame lies above the first target frame, that frame must be
  the module body, a dunder (finalizers), or a function handed to a C entry point
  (`_thread.start_new_thread`, `atexit.register`); the rest only run under some
  Python caller. A stack cut by the profiler's depth cap (`[truncated]`) skips this.
- under foreign frames: the first target frame must be *foreign-callable*: the module
  body (runpy, import), an escaping scope, a generator-kind scope (asyncio's
  Handle._run resumes coroutines), or a dunder;
- between two target frames: foreign frames may lie between S (at L) and G when L
  may call foreign code (a call, import, for, with, await, yield from, comprehension,
  decorator, class statement, del) and G is foreign-callable;
- below the last target frame: foreign frames are allowed when that frame's line may
  call foreign code; they are not judged further.
- shims: frames of file `__init__` named `__init__` (3.13's _Py_InitCleanup, shown by
  py-spy and Austin) and of file `<shim>` (3.12's trampoline) are dropped first.
- markers: leading frames that are not `name (path:line)` (`[truncated]`, `thread
  (TID)`, Austin's `P<pid>`/`T<tid>`) are stripped. A sample holding a frame by which the
  profiler itself marks it bad (Austin's `:INVALID:`, crux's `[unreadable]`) is the
  profiler's own reported error: counted apart and left out of the samples judged.
The leaf target frame (no frame below it) must have its line among its own lines;
on 3.10+ it may have no line at all (instructions without a line number: 3.11's
JUMP_BACKWARD of an `if` inside a loop, where a thread gives up the GIL; exception
handler cleanup). Such samples are possible but counted apart (`noline`), since the
line cannot confirm the frame. Every frame above the leaf needs a line.

Each impossible stack is also judged with callers allowed at any of their lines
(Model.relaxed(); "ignoring callers' lines" in the report): what stays impossible is a
wrong function or root, the rest a caller's line that does not call its callee.

Known limits, which the trust targets avoid: a generator dropped unfinished is closed
where its last reference goes (any line); a Python signal handler or a foreign
`__del__` can run below any line; a property getter of a foreign class runs below an
attribute access. None of these is admitted, so such stacks would be flagged.
"""
import argparse
import ast
import collections
import json
import os
import re
import sys

# `name (path:line)`; py-spy writes `name (path)` for a frame without a line (3.13's
# _Py_InitCleanup). Greedy name, so a name holding " (" still parses.
FRAME_RE = re.compile(r"^(?P<name>.*) \((?P<path>.*?)(?::(?P<line>-?\d+))?\)$", re.S)
# Markers, crux's `NAME (TID)` thread and process roots, py-spy's and Austin's P/T roots.
MARKER_RE = re.compile(r"^(\[.*\]|.* \(\d+\)|process( .*)?|P\d+|T[\d:]+)$", re.S)
COLLAPSED_LINE_RE = re.compile(r"^(?P<stack>.+) (?P<count>\d+)$")
TRUNCATED = "[truncated]"
# Frames with which a tool marks a sample it knows is bad (crux's [unreadable], Austin's
# `:INVALID:`): such a sample is the tool's own error, counted apart, never judged.
INVALID = "[invalid]"
INVALID_FRAMES = ("[unreadable]", INVALID)

COMP_NODES = (ast.ListComp, ast.SetComp, ast.DictComp)
COMP_NAMES = {ast.ListComp: "<listcomp>", ast.SetComp: "<setcomp>",
              ast.DictComp: "<dictcomp>", ast.GeneratorExp: "<genexpr>"}
FUNC_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
# Decorators that keep a method directly callable by its name (no wrapper frame).
PLAIN_DECORATORS = {"staticmethod", "classmethod"}
# C entry points that call a Python function with no Python frame above it.
C_ENTRIES = {"start_new_thread", "start_new", "register"}
INITS = ("__init__", "__new__")


def is_dunder(name):
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


class Scope(object):
    """One code object of the target: module, class body, function, lambda, comprehension."""

    def __init__(self, sid, kind, name, node, parent):
        self.sid = sid
        self.kind = kind  # module class function lambda genexpr comp
        self.name = name  # co_name
        self.node = node
        self.parent = parent
        self.qualname = name
        self.first = getattr(node, "lineno", 1)
        self.last = getattr(node, "end_lineno", None) or self.first
        self.own = set()
        self.gen_kind = False  # generator, coroutine, async generator, genexpr
        self.decorated = False  # by something other than staticmethod/classmethod
        self.property = False
        self.escaping = False
        self.c_entry = False
        self.klass = None  # the class scope of a method
        self.foreign_base = False  # for class scopes
        self.bases = []  # base class names (class scopes)
        self.sites = collections.defaultdict(list)  # line -> [Site]
        self.foreign_lines = set()

    @property
    def dunder(self):
        return self.kind == "function" and self.klass is not None and is_dunder(self.name)

    @property
    def anywhere(self):
        return self.dunder and self.name not in INITS

    @property
    def foreign_callable(self):
        return (self.kind == "module" or self.escaping or self.gen_kind or self.dunder)

    @property
    def root_ok(self):
        return self.kind == "module" or self.dunder or self.c_entry

    def label(self):
        return "%s (%d-%d)" % (self.qualname, self.first, self.last)

    def __repr__(self):
        return "Scope(%s)" % self.label()


class Site(object):
    """A span of lines of one scope where a call or resumption may happen."""

    def __init__(self, lo, hi, direct=(), indirect=False, resume=False, what=""):
        self.lo = lo
        self.hi = hi
        self.direct = set(direct)  # Scope ids admitted by name
        self.indirect = indirect  # admits escaping scopes and every __init__/__new__
        self.resume = resume  # admits generator-kind scopes
        self.what = what


def node_range(node):
    return node.lineno, (getattr(node, "end_lineno", None) or node.lineno)


def header_range(stmt):
    """Lines of a statement's header: the whole of a simple statement, up to the body
    of a compound one."""
    lo, hi = node_range(stmt)
    if isinstance(stmt, FUNC_NODES + (ast.ClassDef,)):
        if stmt.decorator_list:
            lo = min(lo, min(d.lineno for d in stmt.decorator_list))
        hi = max(stmt.lineno, stmt.body[0].lineno - 1) if stmt.body else hi
        return lo, max(lo, hi)
    body = getattr(stmt, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.AST):
        parts = []
        for field in ("test", "iter", "target", "items", "type", "subject"):
            v = getattr(stmt, field, None)
            if isinstance(v, list):
                parts.extend(x for x in v if isinstance(x, ast.AST))
            elif isinstance(v, ast.AST):
                parts.append(v)
        ends = [getattr(p, "end_lineno", None) or getattr(p, "lineno", lo) for p in parts
                if hasattr(p, "lineno") or hasattr(p, "end_lineno")]
        for p in parts:  # withitem has no position; its expressions do
            if isinstance(p, ast.withitem):
                ends.append(node_range(p.context_expr)[1])
                if p.optional_vars is not None:
                    ends.append(node_range(p.optional_vars)[1])
        return lo, max([lo] + ends)
    return lo, hi


class Model(object):
    """The possible stacks of one target source file, for one Python version."""

    def __init__(self, source_path, version, names="auto", caller_lines=True):
        self.caller_lines = caller_lines  # False: a caller may be at any of its lines
        self.path = os.path.abspath(source_path)
        self.real = os.path.realpath(source_path)
        self.base = os.path.basename(source_path)
        self.version = tuple(version[:2])
        if names == "auto":
            names = "qualname" if self.version >= (3, 11) else "name"
        if names not in ("name", "qualname", "either"):
            raise ValueError("names must be auto, name, qualname or either")
        self.names = names
        with open(source_path, encoding="utf-8") as f:
            self.source = f.read()
        self.tree = ast.parse(self.source, filename=source_path)
        self.scopes = []
        self.by_node = {}
        self._paths = {}
        self._relaxed = None
        self._memo = {}  # (previous state, frame) -> (candidate scope ids, why not)
        self._build()

    # -- building ---------------------------------------------------------------------

    def inlined(self, node):
        """3.12+ inlines list/set/dict comprehensions (PEP 709)."""
        return isinstance(node, COMP_NODES) and self.version >= (3, 12)

    def is_scope_node(self, node):
        if isinstance(node, FUNC_NODES + (ast.Lambda, ast.ClassDef, ast.GeneratorExp)):
            return True
        return isinstance(node, COMP_NODES) and not self.inlined(node)

    def _build(self):
        module = self._new_scope("module", "<module>", self.tree, None)
        module.first, module.last = 1, max(1, len(self.source.splitlines()))
        self._collect_scopes(self.tree, module)
        self.index_name = collections.defaultdict(list)
        self.index_qual = collections.defaultdict(list)
        self.classes = collections.defaultdict(list)
        for s in self.scopes:
            self.index_name[s.name].append(s)
            self.index_qual[s.qualname].append(s)
            if s.kind == "class":
                self.classes[s.name].append(s)
        self._mark_escaping()
        for s in self.scopes:
            for b in s.bases:
                if b not in self.classes:
                    s.foreign_base = True
        for s in self.scopes:
            if s.klass is not None and s.klass.foreign_base:
                s.escaping = True
        for s in self.scopes:
            self._own_lines(s)
            self._sites(s)

    def _new_scope(self, kind, name, node, parent):
        s = Scope(len(self.scopes), kind, name, node, parent)
        self.scopes.append(s)
        self.by_node[id(node)] = s
        if parent is not None and parent.kind != "module":
            # co_qualname [3.11+]: nested in a class -> C.name; in code -> f.<locals>.name
            if parent.kind == "class":
                s.qualname = parent.qualname + "." + name
            else:
                s.qualname = parent.qualname + ".<locals>." + name
        return s

    def _collect_scopes(self, node, scope):
        """Creates a Scope for every code object under node, depth first."""
        for child in ast.iter_child_nodes(node):
            if self.is_scope_node(child):
                sub = self._scope_for(child, scope)
                self._collect_scopes(child, sub)
            else:
                self._collect_scopes(child, scope)

    def _scope_for(self, node, parent):
        if isinstance(node, FUNC_NODES):
            s = self._new_scope("function", node.name, node, parent)
            if node.decorator_list:
                s.first = min(d.lineno for d in node.decorator_list)
            for d in node.decorator_list:
                dn = d.id if isinstance(d, ast.Name) else (
                    d.attr if isinstance(d, ast.Attribute) else None)
                if dn in ("property", "setter", "getter", "deleter", "cached_property"):
                    s.property = True
                if dn not in PLAIN_DECORATORS:
                    s.decorated = True
            if parent.kind == "class":
                s.klass = parent
            s.gen_kind = isinstance(node, ast.AsyncFunctionDef) or self._has_yield(node)
        elif isinstance(node, ast.ClassDef):
            s = self._new_scope("class", node.name, node, parent)
            if node.decorator_list:
                s.first = min(d.lineno for d in node.decorator_list)
            for b in node.bases:
                s.bases.append(b.id if isinstance(b, ast.Name) else
                               (b.attr if isinstance(b, ast.Attribute) else "?"))
        elif isinstance(node, ast.Lambda):
            s = self._new_scope("lambda", "<lambda>", node, parent)
            s.escaping = True
        else:
            s = self._new_scope("genexpr" if isinstance(node, ast.GeneratorExp) else "comp",
                                COMP_NAMES[type(node)], node, parent)
            s.gen_kind = isinstance(node, ast.GeneratorExp)
        return s

    def _has_yield(self, func):
        for n in self._own_nodes(func):
            if isinstance(n, (ast.Yield, ast.YieldFrom)):
                return True
        return False

    def _parent_parts(self, node):
        """The parts of a scope node that its parent evaluates."""
        parts = []
        if isinstance(node, FUNC_NODES + (ast.Lambda,)):
            if not isinstance(node, ast.Lambda):
                parts.extend(node.decorator_list)
                if node.returns is not None:
                    parts.append(node.returns)
            a = node.args
            parts.extend(a.defaults)
            parts.extend(d for d in a.kw_defaults if d is not None)
            if not isinstance(node, ast.Lambda):
                for arg in (getattr(a, "posonlyargs", []) + a.args + a.kwonlyargs
                            + [x for x in (a.vararg, a.kwarg) if x is not None]):
                    if arg.annotation is not None:
                        parts.append(arg.annotation)
        elif isinstance(node, ast.ClassDef):
            parts.extend(node.decorator_list)
            parts.extend(node.bases)
            parts.extend(k.value for k in node.keywords)
        else:
            parts.append(node.generators[0].iter)
        return parts

    def _own_roots(self, node):
        """The children of a scope node that run in its own frame."""
        if isinstance(node, ast.Module):
            return list(node.body)
        if isinstance(node, FUNC_NODES + (ast.ClassDef,)):
            return list(node.body)
        if isinstance(node, ast.Lambda):
            return [node.body]
        # comprehension scope: everything but the first iterable
        roots = []
        if isinstance(node, ast.DictComp):
            roots += [node.key, node.value]
        else:
            roots.append(node.elt)
        first = node.generators[0]
        roots += [first.target] + list(first.ifs)
        for g in node.generators[1:]:
            roots += [g.target, g.iter] + list(g.ifs)
        return roots

    def _walk_own(self, roots):
        """Yields every node that runs in the scope whose own roots these are: nested
        scopes are yielded (so that their parent parts are seen) but not entered."""
        stack = list(reversed(roots))
        while stack:
            n = stack.pop()
            yield n
            if self.is_scope_node(n):
                stack.extend(reversed(self._parent_parts(n)))
                continue
            stack.extend(reversed(list(ast.iter_child_nodes(n))))

    def _own_nodes(self, node):
        return self._walk_own(self._own_roots(node))

    def _mark_escaping(self):
        """Names used as values (not as the callee of a call) anywhere in the file."""
        callee_ids = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Call):
                callee_ids.add(id(n.func))
        values = set()
        c_entry = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Name) and id(n) not in callee_ids:
                values.add(n.id)
            elif isinstance(n, ast.Attribute) and id(n) not in callee_ids:
                values.add(n.attr)
            if isinstance(n, ast.Call):
                fname = self._callee_name(n.func)
                if fname in C_ENTRIES:
                    for a in list(n.args) + [k.value for k in n.keywords]:
                        an = self._callee_name(a)
                        if an:
                            c_entry.add(an)
        for s in self.scopes:
            if s.kind == "function":
                # a decorated definition's name is bound to what the decorator returned
                if s.name in values or s.decorated:
                    s.escaping = True
                if s.name in c_entry:
                    s.c_entry = True

    @staticmethod
    def _callee_name(expr):
        if isinstance(expr, ast.Name):
            return expr.id
        if isinstance(expr, ast.Attribute):
            return expr.attr
        return None

    def _own_lines(self, s):
        if s.kind in ("lambda", "genexpr", "comp"):
            s.own = set(range(s.first, s.last + 1))
            return
        lines = set(range(s.first, s.last + 1))
        if s.kind == "module":
            lines.add(0)  # 3.11+ may give a module's first instruction no line
        for n in self._walk_own(self._own_roots(s.node)):
            if isinstance(n, FUNC_NODES + (ast.ClassDef,)) and n.body:
                body_lo = n.body[0].lineno
                if body_lo > n.lineno:
                    lines -= set(range(body_lo, n.end_lineno + 1))
        s.own = lines

    def resolve(self, name):
        """Scopes a callee name may run: functions of that name, a class's constructors."""
        out = [s for s in self.index_name.get(name, ()) if s.kind == "function"]
        for k in self.classes.get(name, ()):
            out.extend(self._inits(k, set()))
        return out

    def _inits(self, klass, seen):
        if klass.sid in seen:
            return []
        seen.add(klass.sid)
        found = [s for s in self.scopes if s.klass is klass and s.name in INITS]
        names = set(s.name for s in found)
        if len(names) < len(INITS):
            for b in klass.bases:
                for base in self.classes.get(b, ()):
                    found.extend(x for x in self._inits(base, seen) if x.name not in names)
        return found

    def _sites(self, s):
        """The sites and foreign-call lines of scope s."""
        stmt_span = {}
        roots = self._own_roots(s.node)
        # statement header spans, for 3.8/3.9's line attribution
        if s.kind in ("lambda", "genexpr", "comp"):
            default_span = (s.first, s.last)
        else:
            default_span = None
        old = self.version < (3, 10)

        def add(lo, hi, foreign=True, **kw):
            site = Site(lo, hi, **kw)
            for line in range(lo, hi + 1):
                s.sites[line].append(site)
                if foreign:
                    s.foreign_lines.add(line)

        def widen(lo, hi, span):
            if old and span is not None:
                return min(lo, span[0]), max(hi, span[1])
            return lo, hi

        # Walk with the enclosing statement's header span known.
        stack = [(r, default_span) for r in reversed(roots)]
        while stack:
            n, span = stack.pop()
            if isinstance(n, ast.stmt):
                span = header_range(n)
            if self.is_scope_node(n):
                sub = self.by_node[id(n)]
                if isinstance(n, ast.ClassDef):
                    lo, hi = header_range(n)
                    add(lo, hi, direct=[sub.sid], indirect=True, what="class")
                elif isinstance(n, FUNC_NODES):
                    if n.decorator_list:
                        lo, hi = header_range(n)
                        direct = []
                        for d in n.decorator_list:
                            direct += [x.sid for x in self.resolve(self._callee_name(d) or "")]
                        add(lo, hi, direct=direct, indirect=True, what="decorator")
                elif isinstance(n, COMP_NODES):
                    lo, hi = widen(*node_range(n), span=span)
                    add(lo, hi, direct=[sub.sid], what="comprehension")
                for p in reversed(self._parent_parts(n)):
                    stack.append((p, span))
                continue
            if isinstance(n, ast.Call):
                lo, hi = widen(*node_range(n), span=span)
                name = self._callee_name(n.func)
                targets = self.resolve(name) if name else []
                direct = [t.sid for t in targets]
                # a call of a name the file defines runs that definition (a class without
                # __init__ runs none of ours); anything else may run any escaping scope
                known = name is not None and (name in self.classes or any(
                    t.kind == "function" for t in self.index_name.get(name, ())))
                indirect = not known or any(t.decorated for t in targets)
                add(lo, hi, direct=direct, indirect=indirect, resume=indirect, what="call")
            elif isinstance(n, (ast.For, ast.AsyncFor)):
                lo, hi = header_range(n)
                add(lo, hi, resume=True, what="for")
            elif isinstance(n, (ast.With, ast.AsyncWith)):
                lo, hi = node_range(n)
                add(lo, hi, what="with")  # __enter__/__exit__ are dunders; foreign lines
            elif isinstance(n, (ast.Await, ast.YieldFrom)):
                lo, hi = widen(*node_range(n), span=span)
                add(lo, hi, resume=True, what="await")
            elif isinstance(n, COMP_NODES + (ast.GeneratorExp,)):
                # an inlined comprehension (3.12+) iterates in this frame
                lo, hi = widen(*node_range(n), span=span)
                add(lo, hi, resume=True, what="comprehension")
            elif isinstance(n, (ast.Import, ast.ImportFrom, ast.Delete)):
                add(*node_range(n), what="import")
            elif isinstance(n, ast.Attribute):
                props = [t.sid for t in self.index_name.get(n.attr, ()) if t.property]
                if props:
                    lo, hi = widen(*node_range(n), span=span)
                    add(lo, hi, foreign=False, direct=props, what="property")
            for c in reversed(list(ast.iter_child_nodes(n))):
                stack.append((c, span))
        if s.kind in ("genexpr", "comp"):
            # the frame iterates its first iterable (and the others) in its own span
            add(s.first, s.last, resume=True, what="comprehension")

    # -- matching ---------------------------------------------------------------------

    def is_target_path(self, path):
        got = self._paths.get(path)
        if got is None:
            got = self._paths[path] = self._is_target_path(path)
        return got

    def _is_target_path(self, path):
        if path is None:
            return False
        if path == self.path or path == self.real:
            return True
        if os.path.isabs(path):
            try:
                return os.path.realpath(path) == self.real
            except OSError:
                return False
        return path == self.base or path.endswith("/" + self.base)

    def candidates(self, name):
        if self.names == "name":
            return self.index_name.get(name, [])
        if self.names == "qualname":
            return self.index_qual.get(name, [])
        seen = {}
        for s in self.index_name.get(name, []) + self.index_qual.get(name, []):
            seen[s.sid] = s
        return list(seen.values())

    def admits(self, caller, line, callee):
        """Whether callee may run right below caller stopped at line (no frame between)."""
        if callee.anywhere and line in caller.own:
            return True
        for site in caller.sites.get(line, ()):
            if callee.sid in site.direct:
                return True
            if site.indirect and (callee.escaping or
                                  (callee.kind == "function" and callee.name in INITS)):
                return True
            if (site.indirect or site.resume) and callee.gen_kind:
                return True
        return False

    def relaxed(self):
        """The same model with callers allowed at any of their lines (cached)."""
        if not self.caller_lines:
            return self
        if self._relaxed is None:
            self._relaxed = Model(self.path, self.version, self.names, caller_lines=False)
        return self._relaxed

    def _calls(self, caller, line, callee):
        if self.caller_lines:
            return self.admits(caller, line, callee)
        return any(self.admits(caller, x, callee) for x in list(caller.sites) + [line])

    def _calls_out(self, caller, line):
        return line in caller.foreign_lines or (not self.caller_lines and caller.foreign_lines)

    def check(self, frames):
        """Checks one stack, root first, each frame (name, path, line). Returns
        (verdict, reason): verdict is 'ok', 'noline' (possible, its leaf at an instruction
        without a line), 'foreign' (no target frame, not judged), 'invalid' (marked bad by
        the profiler, not judged) or 'impossible'."""
        frames = list(frames)
        if any(f[1] is None and f[0] in INVALID_FRAMES for f in frames):
            return "invalid", "the profiler marked this sample invalid"
        truncated = False
        while frames and frames[0][1] is None:
            truncated = truncated or frames[0][0] == TRUNCATED
            frames.pop(0)
        frames = [f for f in frames
                  if not (f[1] == "<shim>" or (f[1] == "__init__" and f[0] == "__init__"))]
        kinds = [self.is_target_path(f[1]) for f in frames]
        if not any(kinds):
            return "foreign", ""
        first = kinds.index(True)
        noline = False
        states = None  # candidate scopes of the previous target frame, as a tuple
        prev = None
        gap = False
        for i, (name, path, line) in enumerate(frames):
            if not kinds[i]:
                if states is not None:
                    gap = True
                continue
            leaf_noline = line is None and self.version >= (3, 10) and i == len(frames) - 1
            noline = noline or leaf_noline
            if states is None:
                mode = "under-foreign" if first > 0 else ("cut" if truncated else "root")
                key = (mode, name, line, leaf_noline)
            else:
                key = (states, prev, gap, name, line, leaf_noline)
            got = self._memo.get(key)
            if got is None:
                got = self._step(key, states, prev, gap, name, line, leaf_noline,
                                 frames[first - 1][0] if first > 0 else "")
                self._memo[key] = got
            states, why = got
            if not states:
                return "impossible", why
            prev = (name, line)
            gap = False
        if gap and not any(self._calls_out(self.scopes[p], prev[1]) for p in states):
            return "impossible", "%s:%s calls nothing outside the target" % prev
        return ("noline" if noline else "ok"), ""

    def _step(self, key, states, prev, gap, name, line, leaf_noline, above):
        """The candidate scopes (a tuple of ids) of the frame (name, line) below the
        previous target frame prev (whose candidates are states), and why none if so."""
        cands = self.candidates(name)
        if not cands:
            return (), "no code object named %r in the target" % name
        if not leaf_noline:  # else: the leaf is at an instruction without a line number
            cands = [c for c in cands if line in c.own]
            if not cands:
                return (), "%s:%s is not a line of %s" % (name, line, name)
        why = ""
        if states is None:
            if key[0] == "under-foreign":
                cands = [c for c in cands if c.foreign_callable]
                why = "%s runs only under a target caller, not under %s" % (name, above)
            elif key[0] == "root":
                cands = [c for c in cands if c.root_ok]
                why = "%s cannot be the outermost frame" % name
        else:
            pname, pline = prev
            callers = [self.scopes[p] for p in states]
            if gap:
                cands = [c for c in cands if c.foreign_callable and
                         any(self._calls_out(p, pline) for p in callers)]
                why = "%s:%s cannot reach %s through foreign frames" % (pname, pline, name)
            else:
                cands = [c for c in cands if any(self._calls(p, pline, c) for p in callers)]
                why = "%s:%s does not call %s" % (pname, pline, name)
        return tuple(c.sid for c in cands), why


# -- reading stack files ---------------------------------------------------------------

def parse_frame(raw):
    """(name, path, line) of `name (path:line)`; (raw, None, None) for a marker frame."""
    if MARKER_RE.match(raw):
        return raw, None, None
    m = FRAME_RE.match(raw)
    if not m:
        return raw, None, None
    line = m.group("line")
    return m.group("name"), m.group("path"), int(line) if line is not None else None


def parse_austin_frame(raw):
    """Austin 3 writes `path:name:line`, and `:INVALID:` for a frame it could not read."""
    if MARKER_RE.match(raw):
        return raw, None, None
    if raw == ":INVALID:":
        return INVALID, None, None
    parts = raw.rsplit(":", 2)
    if len(parts) != 3:
        return raw, None, None
    path, name, line = parts
    try:
        return name, path, int(line)
    except ValueError:
        return raw, None, None


def read_stacks(path, fmt="collapsed"):
    """{tuple of (name, path, line) root first: samples}. collapsed: `f;f;f COUNT` lines
    (crux, py-spy raw); austin: `P<pid>;T<iid>:<tid>;path:name:line;... METRIC`, one
    sample per line; lines without frames (idle samples) are skipped."""
    stacks = collections.Counter()
    parse = parse_austin_frame if fmt == "austin" else parse_frame
    cache = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            m = COLLAPSED_LINE_RE.match(line)
            if not m:
                continue
            frames = []
            for raw in m.group("stack").split(";"):
                got = cache.get(raw)
                if got is None:
                    got = cache[raw] = parse(raw)
                frames.append(got)
            frames = tuple(frames)
            count = 1 if fmt == "austin" else int(m.group("count"))
            if all(fr[1] is None for fr in frames):
                continue
            stacks[frames] += count
    return stacks


class Report(object):
    """The verdict over one stack file."""

    def __init__(self):
        self.total = 0
        self.target = 0  # samples with at least one target frame
        self.foreign = 0
        self.noline = 0  # possible samples whose leaf target frame has no line
        self.invalid = 0  # samples the profiler marked invalid: not in total
        self.impossible = 0
        # impossible even when callers may be at any of their lines: a wrong function or
        # root, not only a caller's stale line
        self.impossible_calls = 0
        self.bad = collections.Counter()
        self.reasons = {}

    @property
    def rate(self):
        return self.impossible / self.total if self.total else 0.0

    def top(self, n=10):
        return [(c, s, self.reasons[s]) for s, c in self.bad.most_common(n)]

    def as_dict(self, n=10):
        return {"samples": self.total, "target_samples": self.target,
                "foreign_only_samples": self.foreign, "noline_leaf_samples": self.noline,
                "tool_marked_invalid": self.invalid,
                "impossible": self.impossible,
                "impossible_rate": self.rate,
                "impossible_ignoring_caller_lines": self.impossible_calls,
                "top": [{"count": c, "stack": format_stack(s), "reason": r}
                        for c, s, r in self.top(n)]}


def check_stacks(model, stacks):
    rep = Report()
    for frames, count in stacks.items():
        verdict, reason = model.check(frames)
        if verdict == "invalid":
            rep.invalid += count
            continue
        rep.total += count
        if verdict == "foreign":
            rep.foreign += count
            continue
        rep.target += count
        if verdict == "noline":
            rep.noline += count
        if verdict == "impossible":
            rep.impossible += count
            if model.relaxed().check(frames)[0] == "impossible":
                rep.impossible_calls += count
            rep.bad[frames] += count
            rep.reasons[frames] = reason
    return rep


def check_file(model, path, fmt="collapsed"):
    return check_stacks(model, read_stacks(path, fmt))


def format_stack(frames, short=True):
    out = []
    for name, path, line in frames:
        if path is None:
            out.append(name)
            continue
        p = os.path.basename(path) if short else path
        out.append("%s (%s:%s)" % (name, p, line) if line is not None else "%s (%s)" % (name, p))
    return ";".join(out)


def summary(rep, n=10):
    lines = ["samples: %d (%d with target frames, %d foreign only, %d with a leaf without line)"
             % (rep.total, rep.target, rep.foreign, rep.noline),
             "impossible: %d (%.2f%%); ignoring callers' lines: %d" % (
                 rep.impossible, 100.0 * rep.rate, rep.impossible_calls)]
    if rep.invalid:
        lines.insert(1, "marked invalid by the profiler (not counted above): %d" % rep.invalid)
    if rep.impossible:
        lines.append("top impossible stacks (count, stack root first, why):")
        for c, s, r in rep.top(n):
            lines.append("  %6d  %s\n          -- %s" % (c, format_stack(s), r))
    return "\n".join(lines)


def version_from_truth(path):
    with open(path, encoding="utf-8") as f:
        return tuple(json.load(f)["version_info"][:2])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", help="the target program's source file")
    ap.add_argument("stacks", help="the profiler's stacks")
    ap.add_argument("--format", choices=("collapsed", "austin"), default="collapsed")
    ap.add_argument("--python", help="version the target ran under, e.g. 3.12")
    ap.add_argument("--truth", help="a target's truth JSON (gives the version)")
    ap.add_argument("--names", choices=("auto", "name", "qualname", "either"), default="auto",
                    help="frame names: co_name (<3.11), co_qualname (3.11+); default by version")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    a = ap.parse_args(argv)
    if a.truth:
        version = version_from_truth(a.truth)
    elif a.python:
        version = tuple(int(x) for x in a.python.split(".")[:2])
    else:
        ap.error("give --python X.Y or --truth FILE")
    try:
        model = Model(a.target, version, a.names)
        rep = check_file(model, a.stacks, a.format)
    except (OSError, SyntaxError, ValueError) as e:
        print("trust_check: %s" % e, file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(rep.as_dict(a.top), indent=1))
    else:
        print(summary(rep, a.top))
    return 1 if rep.impossible else 0


if __name__ == "__main__":
    sys.exit(main())
