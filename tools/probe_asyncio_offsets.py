#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Finds the offsets of _asyncio's TaskObj fields that crux reads (docs/async.md, Layouts).

TaskObj is not in the installed headers. This creates a C Task with a known loop, coroutine,
name and waiter (a Future it awaits), searches the Task's memory (sys.getsizeof bytes,
through ctypes) for those objects' addresses, and prints one line per field, and also the
registry crux reads (`asyncio.tasks._all_tasks` or `_scheduled_tasks`) and whether the task is
in it. Run it with each interpreter: `python3.X tools/probe_asyncio_offsets.py`.
"""
import asyncio
import ctypes
import sys


def words(obj, size):
    n = size // 8
    return list((ctypes.c_uint64 * n).from_address(id(obj)))


async def child(fut):
    await fut


async def main():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    coro = child(fut)
    task = loop.create_task(coro, name="probe-task-name")
    await asyncio.sleep(0)  # the task runs up to its await: _fut_waiter is fut
    assert type(task) is asyncio.tasks._CTask if hasattr(asyncio.tasks, "_CTask") else True
    size = sys.getsizeof(task)
    w = words(task, size)
    want = {"loop": id(loop), "coro": id(coro), "name": id(task.get_name()), "fut_waiter": id(fut)}
    print("python %d.%d.%d, sizeof Task %d" % (sys.version_info[:3] + (size,)))
    for field, addr in want.items():
        offs = [8 * i for i, v in enumerate(w) if v == addr]
        print("  %-10s %s" % (field, offs if offs else "not found"))
    reg = None
    for attr in ("_scheduled_tasks", "_all_tasks"):
        r = getattr(asyncio.tasks, attr, None)
        if r is not None and hasattr(r, "data"):
            reg = attr
            print("  registry   asyncio.tasks.%s (WeakSet), task in it: %s" % (attr, task in r))
            break
    if reg is None:
        print("  registry   none found")
    fut.set_result(None)
    await task


asyncio.run(main())
