"""A FastAPI app served by uvicorn, with crux stage markers in its request handler.

GET /predict runs parse (3 ms, sync), model (15 ms, awaited) and serialize (2 ms) inside
crux.request(); the app measures each stage itself and GET /truth returns those
measurements; GET /attached tells whether a recorder reads the ring. --port PORT.
"""
import asyncio
import time

import uvicorn
from fastapi import FastAPI

import crux
from _harness import parse_args, write_truth

app = FastAPI()
measured = {"parse": [], "model": [], "serialize": []}


@app.get("/attached")
async def attached():
    return {"attached": crux.attached()}


@app.get("/predict")
async def predict():
    with crux.request():
        with crux.stage("parse"):
            t0 = time.monotonic_ns()
            time.sleep(0.003)
            measured["parse"].append(time.monotonic_ns() - t0)
        with crux.stage("model"):
            t0 = time.monotonic_ns()
            await asyncio.sleep(0.015)
            measured["model"].append(time.monotonic_ns() - t0)
        with crux.stage("serialize"):
            t0 = time.monotonic_ns()
            time.sleep(0.002)
            body = {"ok": True}
            measured["serialize"].append(time.monotonic_ns() - t0)
    return body


@app.get("/truth")
async def truth():
    return measured


def main():
    args = parse_args(__doc__, lambda p: p.add_argument("--port", type=int, required=True))

    @app.on_event("startup")
    async def ready():
        write_truth(args.truth, {"phase": "ready", "port": args.port})

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
