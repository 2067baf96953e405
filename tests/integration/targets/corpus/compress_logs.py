"""Compresses rotated log segments with gzip and checks them by decompressing with zlib.

Everything stays in memory (gzip.compress / zlib.decompress on bytes): the time is CPU
in libz, with no file I/O: host bound.
"""
import gzip
import random
import zlib

from _timing import Clock, parse_args


def make_segment(rng, lines):
    return "".join("2024-06-01T12:%02d:%02d.%03dZ %s %s request_id=%016x status=%d ms=%d\n"
                   % (rng.randrange(60), rng.randrange(60), rng.randrange(1000),
                      rng.choice(["INFO", "INFO", "WARN", "DEBUG"]),
                      rng.choice(["GET /v1/embed", "POST /v1/chat", "GET /health"]),
                      rng.getrandbits(64), rng.choice([200, 200, 200, 404, 500]),
                      rng.randrange(2000))
                   for _ in range(lines)).encode()


def main():
    args = parse_args(__doc__)
    rng = random.Random(6)
    segments = [make_segment(rng, 20000) for _ in range(3)]
    clock = Clock()
    rounds = packed = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            for segment in segments:
                blob = gzip.compress(segment, compresslevel=6)
                assert zlib.decompress(blob, 16 + zlib.MAX_WBITS) == segment
                packed += len(blob)
        rounds += 1
    ratio = packed / (rounds * sum(map(len, segments)))
    clock.write(args.truth, expect="host", rounds=rounds, ratio=round(ratio, 3))


if __name__ == "__main__":
    main()
