"""Batch tokenization in pure Python: the designed-in bottleneck is the tokenizer (host bound).

A small WordPiece-style tokenizer written in Python encodes batches of synthetic
documents; a cheap numpy-free "model" step sums token ids. Tokenization takes
nearly all the time, so the verdict must be host bound in stage 'tokenize'.
"""
import random
import re
import time

from _harness import parse_args, write_truth

WORD_RE = re.compile(r"\w+|[^\w\s]")


def build_vocab(rng):
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {}
    for i in range(3000):
        w = "".join(rng.choice(letters) for _ in range(rng.randint(2, 6)))
        vocab.setdefault(w, len(vocab))
    for c in letters:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault("##" + c, len(vocab))
    return vocab


def wordpiece(word, vocab):
    out, start = [], 0
    while start < len(word):
        end = len(word)
        piece = None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                piece = sub
                break
            end -= 1
        if piece is None:
            return [0]
        out.append(vocab[piece])
        start = end
    return out


def tokenize_batch(texts, vocab):
    batch = []
    for text in texts:
        ids = []
        for word in WORD_RE.findall(text.lower()):
            ids.extend(wordpiece(word, vocab))
        batch.append(ids[:256])
    return batch


def model_step(batch):
    return sum(sum(ids) for ids in batch)


def main():
    args = parse_args(__doc__)
    rng = random.Random(1)
    vocab = build_vocab(rng)
    words = list(vocab)[:2000]
    docs = [" ".join(rng.choice(words) + rng.choice(["", "ing", "ed", "s"])
                     for _ in range(60)) for _ in range(200)]
    end = time.perf_counter() + args.duration
    batches = 0
    while time.perf_counter() < end:
        batch = tokenize_batch(docs[batches % 10 * 20:batches % 10 * 20 + 20], vocab)
        model_step(batch)
        batches += 1
    write_truth(args.truth, {"batches": batches, "expect": "host", "stage": "tokenize"})


if __name__ == "__main__":
    main()
