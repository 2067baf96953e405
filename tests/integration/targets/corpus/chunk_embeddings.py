"""Embeds text chunks with a linear projection in numpy: embed_chunk looks up token
vectors, mean-pools them per chunk and projects them with the @ operator.

The projection (float32 matrix products) takes most of the time: BLAS, model compute,
even though the function's name says "chunk" (it does no text splitting).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _timing import Clock, parse_args  # noqa: E402


def embed_chunk(token_ids, table, projection, clock):
    with clock("host"):  # numpy gathering and pooling, outside BLAS
        pooled = table[token_ids].mean(axis=1)
    with clock("model"):
        out = pooled @ projection @ projection.T @ projection
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main():
    args = parse_args(__doc__)
    rng = np.random.default_rng(14)
    table = rng.standard_normal((10000, 768)).astype(np.float32)
    projection = rng.standard_normal((768, 768)).astype(np.float32) / 28.0
    chunks = [rng.integers(0, 10000, size=(512, 8)) for _ in range(4)]
    clock = Clock()
    done = 0
    norms = 0.0
    while clock.elapsed() < args.duration:
        vectors = embed_chunk(chunks[done % 4], table, projection, clock)
        norms += float(vectors[0] @ vectors[1])
        done += 1
    clock.write(args.truth, expect="model", chunks=done, check=round(norms, 3))


if __name__ == "__main__":
    main()
