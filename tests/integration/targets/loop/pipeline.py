"""A feature pipeline whose Pool workers hand large results back to the parent, in one of two
ways: `pickle` returns each result as a list of rows (the parent's result thread unpickles
them: serialization bound), `shm` writes the rows into shared memory and returns only where
they are (the parent reads them in place). The parent then totals the rows.

Usage: pipeline.py pickle|shm [SECONDS]
"""
import multiprocessing as mp
import struct
import sys
import time
from multiprocessing import shared_memory

ROWS = 6000
ROW = struct.Struct("<qdq")


def rows_for(task):
    base = task * 7
    return [(base + i, (i % 97) * 0.5, i % 11) for i in range(ROWS)]


def work_pickle(task):
    return rows_for(task)


def work_shm(args):
    task, name, slot = args
    shm = shared_memory.SharedMemory(name=name)
    try:
        off = slot * ROWS * ROW.size
        buf = shm.buf
        for i, row in enumerate(rows_for(task)):
            ROW.pack_into(buf, off + i * ROW.size, *row)
    finally:
        shm.close()
    return slot


def main():
    mode = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    ctx = mp.get_context("fork")
    total = 0
    end = time.monotonic() + seconds
    slots = 8
    shm = shared_memory.SharedMemory(create=True, size=slots * ROWS * ROW.size)
    try:
        with ctx.Pool(2) as pool:
            task = 0
            while time.monotonic() < end:
                if mode == "pickle":
                    for rows in pool.imap_unordered(work_pickle, range(task, task + slots)):
                        total += len(rows)
                else:
                    jobs = [(task + s, shm.name, s) for s in range(slots)]
                    for slot in pool.imap_unordered(work_shm, jobs):
                        view = shm.buf[slot * ROWS * ROW.size:(slot + 1) * ROWS * ROW.size]
                        total += sum(1 for _ in ROW.iter_unpack(view))
                        del view
                task += slots
    finally:
        shm.close()
        shm.unlink()
    print(total)


if __name__ == "__main__":
    main()
