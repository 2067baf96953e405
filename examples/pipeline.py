"""A small text pipeline with a designed-in bottleneck, for trying crux.

It tokenizes documents in pure Python, embeds them with a hashing trick, searches
them by cosine similarity and serializes the results. The "model" (the embedding)
is cheap; the pure-Python search and tokenization are not: crux record shows it.

    build/crux record -o profile.html -- python3 examples/pipeline.py
"""
import json
import math
import random
import re
import threading
import time

WORD = re.compile(r"[a-z]+")
DIM = 64


def make_corpus(n, rng):
    words = ["tensor", "batch", "token", "model", "queue", "pickle", "latency", "server",
             "gradient", "cache", "kernel", "thread", "socket", "vector", "embedding"]
    return [" ".join(rng.choice(words) for _ in range(120)) for _ in range(n)]


def tokenize(text):
    tokens = []
    for word in WORD.findall(text.lower()):
        # Byte-pair-like splitting done the slow way, one character at a time.
        piece = ""
        for ch in word:
            piece += ch
            if len(piece) >= 3:
                tokens.append(piece)
                piece = ""
        if piece:
            tokens.append(piece)
    return tokens


def embed(tokens):
    vec = [0.0] * DIM
    for tok in tokens:
        vec[hash(tok) % DIM] += 1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def search(query, index, k=5):
    scored = [(sum(a * b for a, b in zip(query, vec)), i) for i, vec in enumerate(index)]
    scored.sort(reverse=True)
    return scored[:k]


def heartbeat(stop):
    while not stop.is_set():
        time.sleep(0.05)


def main():
    rng = random.Random(7)
    stop = threading.Event()
    threading.Thread(target=heartbeat, args=(stop,), name="heartbeat", daemon=True).start()
    corpus = make_corpus(400, rng)
    deadline = time.perf_counter() + 3.0
    rounds = 0
    while time.perf_counter() < deadline:
        index = [embed(tokenize(doc)) for doc in corpus[:200]]
        results = [search(embed(tokenize(q)), index) for q in corpus[200:230]]
        json.dumps(results)
        rounds += 1
    stop.set()
    print(f"pipeline: {rounds} rounds")


if __name__ == "__main__":
    main()
