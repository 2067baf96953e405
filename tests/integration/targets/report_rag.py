"""A RAG-like pipeline across processes: the designed-in bottleneck is serialization.

Two worker processes take questions from a multiprocessing queue; each chunks a
document, embeds the chunks with numpy (hashed bag of words), runs a cosine search,
sleeps 5 ms standing in for the LLM call, and sends back a large result (chunks,
scores and embeddings as Python lists) through a multiprocessing queue. The parent
unpickles every result and writes it out as JSON lines, so the parent's time goes to
moving and re-encoding results between processes, not to the pipeline's own work.
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _harness import parse_args, write_truth  # noqa: E402

DIM = 256
WORDS = ("retrieval augmented generation splits documents into chunks embeds them and "
         "searches the nearest chunks for every question before calling the model").split()


def make_document(seed):
    return " ".join(WORDS[(seed * 7 + i * 13) % len(WORDS)] for i in range(4000))


def chunk_text(text, size=200, overlap=40):
    out, i = [], 0
    while i < len(text):
        out.append(text[i:i + size])
        i += size - overlap
    return out


def embed(chunks):
    m = np.zeros((len(chunks), DIM))
    for r, c in enumerate(chunks):
        for w in c.split():
            m[r, hash(w) % DIM] += 1.0
    return m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9)


def search(m, q, k=8):
    scores = m @ q
    return np.argsort(-scores)[:k], scores


def call_llm(question, context):
    time.sleep(0.005)
    return "answer to %s from %d chunks" % (question, len(context))


def worker(tasks, results):
    while True:
        item = tasks.get()
        if item is None:
            break
        chunks = chunk_text(make_document(item))
        m = embed(chunks)
        top, scores = search(m, m[item % len(chunks)])
        answer = call_llm(item, [chunks[i] for i in top])
        results.put({"question": item, "answer": answer, "chunks": chunks,
                     "scores": scores.tolist(), "embeddings": m.tolist()})


def main():
    args = parse_args(__doc__)
    tasks, results = mp.Queue(), mp.Queue()
    procs = [mp.Process(target=worker, args=(tasks, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for i in range(4):
        tasks.put(i)
    sent, got = 4, 0
    out = open(os.devnull, "w")
    end = time.perf_counter() + args.duration
    while time.perf_counter() < end:
        r = results.get()
        out.write(json.dumps(r) + "\n")
        got += 1
        tasks.put(sent)
        sent += 1
    for p in procs:
        tasks.put(None)
    while got < sent:
        results.get()
        got += 1
    for p in procs:
        p.join()
    write_truth(args.truth, {"results": got, "expect": "serialization"})


if __name__ == "__main__":
    main()
