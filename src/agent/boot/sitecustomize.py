"""crux's startup hook for `crux record --allocations` (docs/memory.md).

crux puts this directory first on PYTHONPATH and sets CRUX_ALLOCATIONS; Python imports
`sitecustomize` at startup, before the program. This one imports crux's agent for this
interpreter (which installs the allocation hooks), then runs the sitecustomize it shadows, if
there is one further down the path, so that a distribution's or a user's hook still runs.
Without CRUX_ALLOCATIONS it only does the latter.
"""
import os
import sys


def _crux_boot():
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("CRUX_ALLOCATIONS"):
        root = os.path.dirname(here)
        v = "%d.%d" % sys.version_info[:2]
        base = getattr(sys, "base_prefix", sys.prefix)
        tags = ["debian" + v, "py" + v] if base == "/usr" else ["py" + v, "debian" + v]
        for tag in tags:
            d = os.path.join(root, tag)
            if os.path.isdir(os.path.join(d, "crux")):
                if d not in sys.path:
                    sys.path.append(d)
                break
        try:
            from crux import _agent
            import atexit
            atexit.register(_agent._alloc_stop)
        except Exception as e:  # the program runs anyway, unprofiled
            sys.stderr.write("crux: allocation sampling unavailable in %s: %s\n"
                             % (sys.executable, e))
    # The sitecustomize this one shadows, if any.
    import importlib.machinery
    import importlib.util
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        mod = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = mod
        spec.loader.exec_module(mod)


_crux_boot()
del _crux_boot
