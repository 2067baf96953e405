"""Non-ASCII names: this file's name, a function café_λ_関数 and Klasse_ü.méthode.

A helper thread waits inside Klasse_ü.méthode (line recorded in the truth) while
the main thread burns CPU in café_λ_関数 for --duration seconds. The truth is
written once both are in place.
"""
import sys
import threading
import time

from _harness import native_id, parse_args, write_truth


class Klasse_ü(object):
    def méthode(self, ready, release, where):
        where["tid"] = native_id()
        where["line"] = sys._getframe().f_lineno + 2
        ready.set()
        release.wait()


def café_λ_関数(end):
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def main():
    args = parse_args(__doc__.splitlines()[0])
    ready = threading.Event()
    release = threading.Event()
    where = {}
    t = threading.Thread(target=Klasse_ü().méthode, args=(ready, release, where))
    t.daemon = True
    t.start()
    ready.wait(10)
    write_truth(args.truth, {
        "function": café_λ_関数.__code__.co_name,
        "method_name": Klasse_ü.méthode.__code__.co_name,
        "method_qualname": Klasse_ü.méthode.__qualname__,
        "method_tid": where["tid"],
        "method_line": where["line"],
        "main_tid": native_id(),
        "file": café_λ_関数.__code__.co_filename,
    })
    café_λ_関数(time.perf_counter() + args.duration)
    release.set()
    t.join()


if __name__ == "__main__":
    main()
