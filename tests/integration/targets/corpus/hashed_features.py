"""Turns text shards into hashed bag-of-words vectors ("the hashing trick") in pure Python,
in a function called embed_shard.

Despite its name, embed_shard runs no model: it lowercases, splits and hashes words in
Python loops. The time is Python on the CPU: host bound (the name must not make it
model compute).
"""
import random
import zlib

from _timing import Clock, parse_args

DIM = 256


def embed_shard(docs):
    vectors = []
    for doc in docs:
        vec = [0.0] * DIM
        for word in doc.lower().split():
            word = word.strip(".,;:!?")
            if len(word) < 2:
                continue
            h = zlib.crc32(word.encode())
            vec[h % DIM] += 1.0 if h & 0x80000000 else -1.0
        norm = sum(v * v for v in vec) ** 0.5 or 1.0
        vectors.append([v / norm for v in vec])
    return vectors


def make_shard(rng, n):
    vocab = ["Tokenizer", "shard", "vector", "index", "query", "latency", "cache", "batch",
             "model", "search", "ranking", "document", "passage", "retrieval", "score"]
    return [" ".join(rng.choice(vocab) + rng.choice(["", ",", ".", "s"])
                     for _ in range(120)) for _ in range(n)]


def main():
    args = parse_args(__doc__)
    rng = random.Random(13)
    shards = [make_shard(rng, 50) for _ in range(8)]
    clock = Clock()
    done = 0
    index = []
    while clock.elapsed() < args.duration:
        with clock("host"):
            index.extend(embed_shard(shards[done % len(shards)]))
        done += 1
    clock.write(args.truth, expect="host", shards=done, vectors=len(index))


if __name__ == "__main__":
    main()
