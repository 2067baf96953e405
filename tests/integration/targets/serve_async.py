"""FastAPI under uvicorn: a handler that awaits a slow downstream call (~80% of a request)
and runs a small model step on the CPU (~20%).

GET /score: predict -> fetch_features -> asyncio.sleep(0.040) (the downstream call), then
model_step (10 ms of matrix products in pure Python). The server times both parts itself
and appends one JSON line per request to the truth file (JSONL). Runs until SIGTERM.
"""
import asyncio
import json
import signal
import sys
import time

import uvicorn
from fastapi import FastAPI

from _harness import parse_args

app = FastAPI()
TRUTH = None
AWAIT_S, MODEL_S = 0.040, 0.010


async def fetch_features():
    await asyncio.sleep(AWAIT_S)  # the downstream service
    return [0.5] * 16


def model_step(features):
    end = time.perf_counter() + MODEL_S
    acc = 0.0
    while time.perf_counter() < end:
        acc += sum(a * b for a, b in zip(features, features))
    return acc


@app.get("/score")
async def predict():
    t0 = time.perf_counter()
    features = await fetch_features()
    t1 = time.perf_counter()
    y = model_step(features)
    t2 = time.perf_counter()
    with open(TRUTH, "a") as f:
        f.write(json.dumps({"await": t1 - t0, "model": t2 - t1}) + "\n")
    return {"y": y}


def main():
    global TRUTH
    args = parse_args(__doc__, lambda p: p.add_argument("--port", type=int, required=True))
    TRUTH = args.truth
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
