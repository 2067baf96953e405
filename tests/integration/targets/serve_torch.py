"""FastAPI under uvicorn serving a small torch model through a dynamic-batching queue.

POST-free GET /predict?x=N: the handler parses (builds the input tensor), puts it on an
asyncio queue and awaits its result; one batcher task collects up to 8 requests or
waits at most 5 ms, runs the model (a 3-layer MLP, 512 wide) on the batch and resolves
each request's future; the handler then serializes. Stages are marked with the crux
agent (parse, queue, model, serialize); the server measures the same spans itself and
appends one JSON line per request to the truth file (JSONL). Runs until SIGTERM.
"""
import asyncio
import json
import signal
import sys
import time

import torch
import uvicorn
from fastapi import FastAPI

import crux
from _harness import parse_args

torch.set_num_threads(1)
MODEL = torch.nn.Sequential(torch.nn.Linear(512, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 512), torch.nn.ReLU(),
                            torch.nn.Linear(512, 16)).eval()
MAX_BATCH, MAX_WAIT_S = 8, 0.005
app = FastAPI()
queue = None
TRUTH = None


async def batcher():
    while True:
        first = await queue.get()
        batch = [first]
        deadline = time.perf_counter() + MAX_WAIT_S
        while len(batch) < MAX_BATCH:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), left))
            except asyncio.TimeoutError:
                break
        t0 = time.perf_counter()
        with crux.stage("model"):
            with torch.no_grad():
                for _ in range(4):  # enough work to see: ~ms per batch
                    out = MODEL(torch.stack([b[0] for b in batch]))
        took = time.perf_counter() - t0
        for (x, fut, t_put), row in zip(batch, out):
            fut.set_result((row, t0 - t_put, took, len(batch)))


@app.on_event("startup")
async def startup():
    global queue
    queue = asyncio.Queue()
    asyncio.get_running_loop().create_task(batcher())


@app.get("/predict")
async def predict(x: int = 1):
    with crux.request():
        t = time.perf_counter()
        with crux.stage("parse"):
            inp = torch.full((512,), float(x) / 1000.0)
        parse_s = time.perf_counter() - t
        fut = asyncio.get_running_loop().create_future()
        t_put = time.perf_counter()
        with crux.stage("queue"):
            await queue.put((inp, fut, t_put))
            row, queue_s, model_s, size = await fut
        t = time.perf_counter()
        with crux.stage("serialize"):
            body = {"y": [float(v) for v in row], "batch": size}
        ser_s = time.perf_counter() - t
    with open(TRUTH, "a") as f:
        f.write(json.dumps({"parse": parse_s, "queue": queue_s, "model": model_s,
                            "serialize": ser_s, "batch": size}) + "\n")
    return body


def main():
    global TRUTH
    args = parse_args(__doc__, lambda p: p.add_argument("--port", type=int, required=True))
    TRUTH = args.truth
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
