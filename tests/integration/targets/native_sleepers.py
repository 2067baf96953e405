"""A service's idle worker pool beside one busy thread: --native on threads that never run.

Twelve threads wait for the whole run, as pooled workers do: four on a shutdown Event
(wait_for_shutdown: a futex wait without a timeout), four on an Event with a timeout
(wait_for_job: a timed futex wait), four in time.sleep (poll_config: a long sleep). One thread
spins in Python (crunch_numbers). The truth file maps each function to its thread's native id.
"""
import threading
import time

from _harness import native_id, parse_args, write_truth

N_EACH = 4


def wait_for_shutdown(stop, ready, tids):
    tids.append(("wait_for_shutdown", native_id()))
    ready.release()
    stop.wait()


def wait_for_job(stop, ready, tids):
    tids.append(("wait_for_job", native_id()))
    ready.release()
    while not stop.wait(60.0):
        pass


def poll_config(stop, ready, tids):
    tids.append(("poll_config", native_id()))
    ready.release()
    while not stop.is_set():
        time.sleep(60.0)


def crunch_numbers(end, ready, tids):
    tids.append(("crunch_numbers", native_id()))
    ready.release()
    total = 0
    while time.perf_counter() < end:
        for i in range(1000):
            total += i * i % 7
    return total


def main():
    args = parse_args(__doc__, duration=3.0)
    stop = threading.Event()
    ready = threading.Semaphore(0)
    tids = []
    end = time.perf_counter() + args.duration
    threads = []
    for fn in (wait_for_shutdown, wait_for_job, poll_config):
        for _ in range(N_EACH):
            threads.append(threading.Thread(target=fn, args=(stop, ready, tids), daemon=True))
    threads.append(threading.Thread(target=crunch_numbers, args=(end, ready, tids)))
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    write_truth(args.truth, {"threads": [[name, tid] for name, tid in tids]})
    threads[-1].join()
    stop.set()


if __name__ == "__main__":
    main()
