"""A batch job of six steps, each a plain Python loop of its own: read, parse, clean,
tokenize, embed, write (embed about twice the others). SLOW=1.2 makes tokenize, and only
tokenize, 20% slower, so the true answer of a comparison is known. Prints a checksum (the
job's output).

Usage: work.py [BATCHES]   (SLOW=FACTOR in the environment)
"""
import os
import sys

FACTOR = float(os.environ.get("SLOW", "1.0"))
N = 100000


def read(n=N):
    x = 0
    for i in range(n):
        x += i * i
    return x


def parse(n=N):
    x = 0
    for i in range(n):
        x += i * i
    return x


def clean(n=N):
    x = 0
    for i in range(n):
        x += i * i
    return x


def tokenize(n=N):
    x = 0
    for i in range(int(n * FACTOR)):
        x += i * i
    return x % 1000003


def embed(n=2 * N):
    x = 0
    for i in range(n):
        x += i * i
    return x


def write(n=N):
    x = 0
    for i in range(n):
        x += i * i
    return x


def main():
    batches = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    total = 0
    for _ in range(batches):
        total += (read() + parse() + clean() + embed() + write()) % 7
        tokenize()
    print(total)


if __name__ == "__main__":
    main()
