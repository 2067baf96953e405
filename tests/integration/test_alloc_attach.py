"""record --allocations --pid (docs/memory.md, "Attaching"): the agent injected into a running
server with ptrace, no debugger.

Every interpreter the agent is built for: a stdlib HTTP server (targets/alloc_server.py) answers
byte-identical bodies before, during and after a recording, keeps running with no thread left
stopped or traced, and its allocating line is named; a SIGKILLed crux leaves it serving; many
attach/detach cycles on a busy server leave it alive and correct (bench/attach_cycles.py runs
1,000). The refusal messages are unit-tested (tests/unit/test_inject.c).
"""
import json
import os
import signal
import time
import urllib.request

import pytest

from crux_helpers import assert_running_freely, thread_states, tracer_pid

AGENT = os.path.join(os.path.dirname(__file__), "..", "..", "build", "agent")
CYCLES = int(os.environ.get("CRUX_ATTACH_CYCLES", "12"))


def needs_agent(interp):
    if not os.path.isdir(os.path.join(AGENT, interp.id, "crux")):
        pytest.skip("no agent built for %s (make agent)" % interp.id)
    if not os.path.isfile(os.path.join(AGENT, "libcrux_attach.so")):
        pytest.skip("libcrux_attach.so not built (make agent)")


def get(port, n):
    with urllib.request.urlopen("http://127.0.0.1:%d/%d" % (port, n), timeout=10) as r:
        return r.read()


def answers(port):
    return [get(port, n) for n in range(5)]


def assert_unharmed(target, port, expected):
    assert target.poll() is None, "server died (status %s)" % target.poll()
    assert answers(port) == expected
    states = thread_states(target.pid)
    assert not [s for s in states.values() if s in ("T", "t")], states
    assert tracer_pid(target.pid) == 0


def serve(crux, interp, busy=False):
    target, _, truth = crux.start_target(interp, "alloc_server.py", *(["--busy"] if busy else []))
    port = truth["port"]
    return target, port, truth, answers(port)


def test_attach_answers_identical_and_names_the_line(crux, interp):
    needs_agent(interp)
    target, port, truth, before = serve(crux, interp)
    out = crux.tmp / "allocs.json"
    rec = crux.start("record", "--pid", target.pid, "--allocations=64K", "--duration", "3",
                     "--stats", "--format", "lines", "-o", out)
    during = []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and rec.popen.poll() is None:
        during.append(answers(port))
    result = rec.finish()
    assert result.returncode == 0, result.describe()
    assert "attach_ms=" in result.stderr, result.stderr
    assert during and all(d == before for d in during)
    assert_unharmed(target, port, before)
    with open(str(out), encoding="utf-8") as f:
        allocs = json.load(f)["allocations"]
    assert allocs is not None
    lines = [s for s in allocs["lines"] if s["file"].endswith("alloc_server.py")]
    assert any(s["line"] == truth["ALLOC"] for s in lines), allocs["lines"][:8]


def test_sigkill_of_crux_mid_recording(crux, interp):
    needs_agent(interp)
    target, port, _, before = serve(crux, interp, busy=True)
    rec = crux.start("record", "--pid", target.pid, "--allocations", "--duration", "30",
                     "--stats", "-o", crux.tmp / "out.txt")
    ring = "/dev/shm/crux-agent-%d" % target.pid
    deadline = time.monotonic() + 20
    while not os.path.exists(ring) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.exists(ring), "the agent made no ring"
    time.sleep(0.5)
    rec.popen.send_signal(signal.SIGKILL)
    rec.popen.wait(10)
    for _ in range(3):
        assert_unharmed(target, port, before)
        time.sleep(0.2)
    assert_running_freely(target.pid)


def test_attach_detach_cycles_on_a_busy_server(crux, interp):
    needs_agent(interp)
    target, port, _, before = serve(crux, interp, busy=True)
    for i in range(CYCLES):
        result = crux.run("record", "--pid", target.pid, "--allocations", "--duration", "0.1",
                          "--rate", "20", "-o", crux.tmp / "cycle.txt")
        assert result.returncode == 0, "cycle %d: %s" % (i, result.describe())
        assert get(port, i % 5) == before[i % 5]
    assert_unharmed(target, port, before)
    assert_running_freely(target.pid)


# ---- native allocations on attach: the GOT patched during a recording, put back after -------

FAMILY = {b"malloc", b"calloc", b"realloc", b"free", b"posix_memalign", b"aligned_alloc",
          b"memalign", b"mmap", b"mmap64", b"munmap"}


def elf_got_slots(path):
    """The (r_offset, name) of the JUMP_SLOT and GLOB_DAT relocations of the malloc family in
    the ELF file at `path`, read with struct (64-bit little-endian only)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dyn = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dyn = (p_offset, p_filesz)

    def off(vaddr):
        for v, o, n in loads:
            if v <= vaddr < v + n:
                return vaddr - v + o
        raise ValueError(hex(vaddr))

    tags = {}
    for i in range(dyn[1] // 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[0] + 16 * i)
        if tag == 0:
            break
        tags[tag] = val
    symtab, strtab = off(tags[6]), off(tags[5])
    out = []
    for table, size in ((23, 2), (7, 8)):  # DT_JMPREL/DT_PLTRELSZ, DT_RELA/DT_RELASZ
        if table not in tags:
            continue
        start = off(tags[table])
        for k in range(tags[size] // 24):
            r_offset, r_info, _ = struct.unpack_from("<QQq", data, start + 24 * k)
            if r_info & 0xffffffff not in (6, 7):  # GLOB_DAT, JUMP_SLOT
                continue
            st_name, = struct.unpack_from("<I", data, symtab + 24 * (r_info >> 32))
            name = data[strtab + st_name:data.index(b"\0", strtab + st_name)]
            if name in FAMILY:
                out.append((r_offset, name.decode()))
    return out


def interpreter_object(pid):
    """(path, load address) of libpython in the process, else of its executable."""
    maps = open("/proc/%d/maps" % pid).read().splitlines()
    first = {}
    for line in maps:
        parts = line.split()
        if len(parts) >= 6 and parts[5].startswith("/") and parts[5] not in first:
            first[parts[5]] = int(parts[0].split("-")[0], 16) - int(parts[2], 16)
    exe = os.path.realpath("/proc/%d/exe" % pid)
    for path, base in first.items():
        if "libpython" in os.path.basename(path):
            return path, base
    return exe, first[exe]


def mapping_of(pid, addr):
    for line in open("/proc/%d/maps" % pid):
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if lo <= addr < hi:
            return parts[5] if len(parts) >= 6 else ""
    return None


def got_values(pid):
    """{name@offset: value} of the interpreter's malloc-family GOT slots, read from /proc/PID/mem."""
    import struct
    path, base = interpreter_object(pid)
    with open(path, "rb") as f:
        if struct.unpack_from("<H", f.read(18), 16)[0] == 2:  # ET_EXEC: absolute addresses
            base = 0
    vals = {}
    with open("/proc/%d/mem" % pid, "rb") as mem:
        for r_offset, name in elf_got_slots(path):
            mem.seek(base + r_offset)
            vals["%s@%x" % (name, r_offset)] = struct.unpack("<Q", mem.read(8))[0]
    return vals


def restored(pid, got0):
    """Every slot holds what it held before the attach, or (a lazy slot still unresolved then)
    what the loader resolved it to since: none points into crux's engine."""
    now = got_values(pid)
    for k, v in now.items():
        if v == got0[k]:
            continue
        if "libcrux_alloc" in (mapping_of(pid, v) or ""):
            return False
        if mapping_of(pid, got0[k]) != interpreter_object(pid)[0]:
            return False  # it held a resolved function, and now another
    return True


def get_json(port, what):
    with urllib.request.urlopen("http://127.0.0.1:%d/%s" % (port, what), timeout=10) as r:
        return json.loads(r.read())


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_native_allocations_on_attach_and_clean_detach(crux, interp):
    needs_agent(interp)
    target, _, truth = crux.start_target(interp, "native_server.py")
    port = truth["port"]
    before = answers(port)
    got0 = got_values(target.pid)
    assert got0 and "malloc" in " ".join(got0), got0
    allocs0 = get_json(port, "allocators")
    out = crux.tmp / "native.json"
    count0 = get_json(port, "count")
    rec = crux.start("record", "--pid", target.pid, "--allocations", "--duration", "3",
                     "--stats", "--format", "lines", "-o", out)
    during_got, during_allocs, during = None, None, []
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and rec.popen.poll() is None:
        during.append(answers(port))
        if during_got is None and os.path.exists("/dev/shm/crux-agent-%d" % target.pid):
            time.sleep(0.3)
            during_got = got_values(target.pid)
            during_allocs = get_json(port, "allocators")
    result = rec.finish()
    count1 = get_json(port, "count")
    assert result.returncode == 0, result.describe()
    assert "native=1" in result.stderr, result.stderr
    assert during and all(d == before for d in during)
    # during: the interpreter's malloc slot points into the engine, and the PyMem domains
    # are crux's
    assert during_got is not None
    hooked = [k for k, v in during_got.items() if v != got0[k]]
    engine = [k for k in hooked if "libcrux_alloc" in (mapping_of(target.pid, during_got[k]) or "")]
    assert any(k.startswith("malloc@") for k in engine), (got0, during_got)
    assert during_allocs != allocs0
    # after: every slot and both domains exactly as before, within the watcher's period
    assert wait_for(lambda: restored(target.pid, got0)), (got0, got_values(target.pid))
    assert wait_for(lambda: get_json(port, "allocators") == allocs0)
    assert_unharmed(target, port, before)
    assert_running_freely(target.pid)
    # the native allocating line is named with about the bytes the worker allocated
    with open(str(out), encoding="utf-8") as f:
        allocs = json.load(f)["allocations"]
    mark = truth["NUMPY"] if truth["numpy"] else truth["MMAP"]
    lines = [s for s in allocs["lines"]
             if s["file"].endswith("native_server.py") and s["line"] == mark]
    assert lines, allocs["lines"][:8]
    made = count1 - count0  # spans the recording and a bit more on both sides
    assert 0.2 * made <= lines[0]["bytes"] <= 1.3 * made, (lines[0], made)


def test_native_attach_cycles(crux, interp):
    needs_agent(interp)
    target, _, truth = crux.start_target(interp, "native_server.py")
    port = truth["port"]
    before = answers(port)
    got0 = got_values(target.pid)
    allocs0 = get_json(port, "allocators")
    for i in range(CYCLES):
        result = crux.run("record", "--pid", target.pid, "--allocations", "--duration", "0.1",
                          "--rate", "20", "-o", crux.tmp / "cycle.txt")
        assert result.returncode == 0, "cycle %d: %s" % (i, result.describe())
        assert get(port, i % 5) == before[i % 5]
    assert wait_for(lambda: restored(target.pid, got0)), (got0, got_values(target.pid))
    assert wait_for(lambda: get_json(port, "allocators") == allocs0)
    assert_unharmed(target, port, before)
    assert_running_freely(target.pid)
