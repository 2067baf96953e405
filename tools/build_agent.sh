#!/usr/bin/env bash
# Builds crux's in-process agent (src/agent: the `crux` package and its C module crux._agent)
# for every installed interpreter: pyenv's 3.8-3.13 and Debian's /usr/bin/python3, each with
# its own sysconfig (headers, EXT_SUFFIX), into OUT/<tag>/crux/ where tag is py3.X for pyenv
# and debian3.X for Debian (the ids the integration tests use). Use it with
# PYTHONPATH=OUT/<tag>. An interpreter without headers is skipped with a note.
# Usage: tools/build_agent.sh [OUT]   (default build/agent)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/agent}"
cc="${CC:-gcc}"
srcs="src/agent/agent.c src/agent/agentalloc.c src/agent/agentnative.c"
deps="$srcs src/agent/agentshm.h src/agent/agentalloc.h src/agent/allocshim.h src/agent/agentnative.h src/agent/gotpatch.h tools/build_agent.sh"
pys="src/agent/crux/__init__.py src/agent/crux/otel.py"

interpreters() {
    local root="${PYENV_ROOT:-$HOME/.pyenv}" pyenv v prefix
    pyenv="$(command -v pyenv || echo "$root/bin/pyenv")"
    for v in 3.8 3.9 3.10 3.11 3.12 3.13; do
        prefix="$("$pyenv" prefix "$v" 2>/dev/null | head -n1 || true)"
        if [ -n "$prefix" ] && [ -x "$prefix/bin/python3" ]; then
            echo "py$v $prefix/bin/python3"
        fi
    done
    if [ -x /usr/bin/python3 ]; then
        v="$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        echo "debian$v /usr/bin/python3"
    fi
}

# The allocation sampler's engine (no Python in it: one for every interpreter), preloaded by
# `crux record --allocations`, and the startup hook that imports the agent (docs/memory.md).
shim="$out/libcrux_alloc.so"
mkdir -p "$out/boot"
if [ ! -f "$shim" ] || [ src/agent/allocshim.c -nt "$shim" ] || [ src/agent/allocshim.h -nt "$shim" ] ||
    [ src/agent/gotpatch.c -nt "$shim" ] || [ src/agent/gotpatch.h -nt "$shim" ] ||
    [ src/agent/agentshm.h -nt "$shim" ] || [ tools/build_agent.sh -nt "$shim" ]; then
    echo "agent: $shim"
    $cc -std=gnu11 -O2 -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
        -ftls-model=initial-exec -Isrc/agent -o "$shim.tmp" src/agent/allocshim.c src/agent/gotpatch.c -ldl -lpthread -lm
    mv "$shim.tmp" "$shim"
fi
# What `crux record --allocations --pid` loads into a running process (src/target/inject.c).
att="$out/libcrux_attach.so"
if [ ! -f "$att" ] || [ src/agent/attachlib.c -nt "$att" ] || [ tools/build_agent.sh -nt "$att" ]; then
    echo "agent: $att"
    $cc -std=gnu11 -O2 -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
        -o "$att.tmp" src/agent/attachlib.c -ldl -lpthread
    mv "$att.tmp" "$att"
fi
cmp -s src/agent/boot/sitecustomize.py "$out/boot/sitecustomize.py" ||
    cp src/agent/boot/sitecustomize.py "$out/boot/"

built=0
while read -r tag py; do
    read -r inc suffix < <("$py" -c 'import sysconfig as s
print(s.get_paths()["include"], s.get_config_var("EXT_SUFFIX"))')
    dir="$out/$tag/crux"
    so="$dir/_agent$suffix"
    if [ ! -f "$inc/Python.h" ]; then
        echo "agent: skipping $tag ($py): no Python.h in $inc (install python3-dev)" >&2
        continue
    fi
    mkdir -p "$dir"
    stale=0
    for f in $deps; do [ "$f" -nt "$so" ] && stale=1; done
    [ -f "$so" ] || stale=1
    if [ "$stale" = 1 ]; then
        echo "agent: $tag -> $so"
        $cc -std=gnu11 -O2 -g -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror \
            -Wno-missing-field-initializers -Wno-cast-function-type \
            -I"$inc" -Isrc/agent -o "$so.tmp" $srcs -lpthread -ldl
        mv "$so.tmp" "$so"
    fi
    for f in $pys; do cmp -s "$f" "$dir/$(basename "$f")" || cp "$f" "$dir/"; done
    built=$((built + 1))
done < <(interpreters)
[ "$built" -gt 0 ] || { echo "agent: no interpreter with headers found" >&2; exit 1; }
