"""record --allocations when the target runs out of memory (docs/memory.md, "Out of memory").

The target runs in a child memory cgroup limited to 200 MB without swap (cgroup v2, or v1's
memory controller where that is what the host mounts) and grows a cache until the kernel kills
it. crux still writes its output, says the target was killed by SIGKILL for memory, and names
the growing line as the biggest holder at the peak. Skipped where no memory cgroup is writable.
"""
import json
import os
import uuid

import pytest

from crux_helpers import load_truth

MB = 1 << 20
AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "agent")
LIMIT = 200 * MB


def own_memory_cgroup():
    """(directory of this process's memory cgroup, 'v1' or 'v2'), or None."""
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in entries:
        if "memory" in controllers.split(","):
            d = "/sys/fs/cgroup/memory" + path
            if os.path.isfile(os.path.join(d, "memory.limit_in_bytes")):
                return d, "v1"
    for _, controllers, path in entries:
        if controllers == "":
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                d = root + path
                ctl = os.path.join(d, "cgroup.subtree_control")
                if os.path.isfile(ctl) and "memory" in open(ctl, encoding="utf-8").read():
                    return d, "v2"
    return None


def make_cgroup():
    found = own_memory_cgroup()
    if not found:
        pytest.skip("no writable memory cgroup (v2 with the memory controller, or v1 memory)")
    parent, version = found
    cg = os.path.join(parent, "crux-oom-%s" % uuid.uuid4().hex[:8])
    try:
        os.mkdir(cg)
        if version == "v2":
            files = [("memory.max", LIMIT), ("memory.swap.max", 0)]
        else:
            files = [("memory.limit_in_bytes", LIMIT), ("memory.memsw.limit_in_bytes", LIMIT)]
        for name, value in files:
            if os.path.exists(os.path.join(cg, name)):
                with open(os.path.join(cg, name), "w", encoding="utf-8") as f:
                    f.write(str(value))
    except OSError as e:
        if os.path.isdir(cg):
            os.rmdir(cg)
        pytest.skip("memory cgroup not writable here (%s): %s" % (parent, e))
    return cg


def test_oom_kill_keeps_the_recording_and_names_the_peak_holder(crux, interp):
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    cg = make_cgroup()
    try:
        argv, truth_path = crux.target_argv(interp, "oom.py")
        shell = 'echo $$ > %s/cgroup.procs && exec "$@"' % cg
        out = crux.tmp / "oom.json"
        result = crux.run("record", "--rate", "50", "--allocations", "--format", "lines",
                          "-o", out, "--", "sh", "-c", shell, "sh", *argv)
    finally:
        try:
            os.rmdir(cg)
        except OSError:
            pass
    assert result.returncode == 128 + 9, result.describe()
    assert "killed by SIGKILL: out of memory" in result.stderr, result.describe()
    truth = load_truth(truth_path)
    with open(str(out), encoding="utf-8") as f:
        allocs = json.load(f)["allocations"]
    assert allocs["killed"] == {"signal": 9, "out_of_memory": True}, allocs["killed"]
    top = allocs["peak_holders"][0]
    assert top["file"].endswith("oom.py") and top["line"] == truth["GROW"], allocs["peak_holders"]
    # most of the limit was the cache when it peaked
    assert 100 * MB <= top["peak_live_bytes"] <= 2 * LIMIT, top
