"""A generator pipeline: consume_pipeline pulls from gen_square, which pulls from gen_source.

Every stage does Python CPU work (the innermost the most), so samples land in each; a profiler must show
them nested in that order (consumer -> outer generator -> inner generator).
"""
import time

from _harness import parse_args, write_truth


def gen_source(end):
    i = 0
    while time.perf_counter() < end:
        acc = 0
        for k in range(900):
            acc += k * i
        yield acc
        i += 1


def gen_square(source):
    for x in source:
        acc = 0
        for k in range(300):
            acc += k ^ x
        yield acc


def consume_pipeline(end):
    total = 0
    items = 0
    for y in gen_square(gen_source(end)):
        for k in range(300):
            total += k & y
        items += 1
    return items


def main():
    args = parse_args(__doc__.splitlines()[0])
    items = consume_pipeline(time.perf_counter() + args.duration)
    write_truth(args.truth, {"items": items,
                             "order": ["consume_pipeline", "gen_square", "gen_source"]})


if __name__ == "__main__":
    main()
