"""Loopback HTTP servers for the `crux load` tests, with their own measurements.

Usage: load_server.py MODE --ready FILE --log FILE [--cert PEM --key PEM] [options]

Writes {"port": N} to --ready once listening, and one JSON line per request to --log
(flushed at once): receive time and finish time (time.monotonic, the same CLOCK_MONOTONIC
crux reads), method, path, headers, body length. Modes:

  basic   answer 200 after --delay seconds (asyncio: concurrent requests overlap)
  stall   answer at once, but block the whole server for --stall seconds on the first
          request received --stall-after seconds after the first one (logged as "stall")
  serial  block the server --delay seconds per request (a server with a known capacity)
  sse     stream --tokens events as an OpenAI-compatible completion endpoint: the first
          after --first seconds, then one every --gap seconds; every event is written as two
          HTTP chunks split in the middle of its data line, then a usage event and [DONE]
  llm     an OpenAI-style completion endpoint whose prefill depends on the prompt: the body's
          prompt (or messages[].content) has P tokens (whitespace-separated words); the first
          token comes --first + --per-prompt * P seconds after the request, then one every
          --gap seconds, max_tokens of them (default --tokens); then a usage event
          (completion_tokens, and prompt_tokens = P * --usage-scale when the body asks for
          stream_options.include_usage) and [DONE]. Logs prompt_tokens, output_tokens and
          first_token (when the first token was written).
  broken  by path: /ok /okclose /eofbody /truncated /badstatus /badchunk /hugeheaders /halfstream
          /halfstream_eof /hang /stallstream /503 /closenow
          /garbage<seed> (random fragments of HTTP, then close or not)
"""
import argparse
import asyncio
import json
import os
import sys
import time

ARGS = None
LOG = None
STATE = {"first": None, "stalled": False, "inflight": 0, "max_inflight": 0}


def log(entry):
    LOG.write(json.dumps(entry) + "\n")
    LOG.flush()


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    t = time.monotonic()
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    n = int(headers.get("content-length", "0"))
    if n:
        body = await reader.readexactly(n)
    return t, method, path, headers, body


def simple(status, body, extra=""):
    return ("HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra)).encode() \
        + body


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def sse_stream(writer, t0):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    await writer.drain()
    for k in range(ARGS.tokens):
        ev = ('data: {"id":"x","choices":[{"index":0,"text":"tok%d"}]}\n\n' % k).encode()
        half = len(ev) // 2
        target = t0 + ARGS.first + k * ARGS.gap
        await asyncio.sleep(max(0.0, target - 0.004 - time.monotonic()))
        writer.write(chunk(ev[:half]))
        await writer.drain()
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        writer.write(chunk(ev[half:]))
        await writer.drain()
    usage = 'data: {"choices":[],"usage":{"completion_tokens":%d}}\n\n' % ARGS.tokens
    writer.write(chunk(usage.encode()) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    await writer.drain()


def prompt_words(req):
    """The server's tokenizer: whitespace-separated words of prompt or messages[].content."""
    texts = []
    prompt = req.get("prompt")
    if isinstance(prompt, str):
        texts.append(prompt)
    elif isinstance(prompt, list):
        texts.extend(p for p in prompt if isinstance(p, str))
    for m in req.get("messages") or []:
        c = m.get("content")
        if isinstance(c, str):
            texts.append(c)
        elif isinstance(c, list):
            texts.extend(part.get("text", "") for part in c if isinstance(part, dict))
    return sum(len(t.split()) for t in texts)


async def llm_stream(writer, t0, body, entry):
    req = json.loads(body or b"{}")
    n_prompt = prompt_words(req)
    n_out = int(req.get("max_tokens", ARGS.tokens))
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    # the pace counts from the first token as written: a late first token (a busy machine)
    # does not shorten the decode that follows
    target = t0 + ARGS.first + ARGS.per_prompt * n_prompt
    for k in range(n_out):
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        ev = 'data: {"id":"x","choices":[{"index":0,"text":" tok%d"}]}\n\n' % k
        writer.write(chunk(ev.encode()))
        await writer.drain()
        if k == 0:
            entry["first_token"] = target = time.monotonic()
        target += ARGS.gap
    usage = {"completion_tokens": n_out}
    if (req.get("stream_options") or {}).get("include_usage"):
        usage["prompt_tokens"] = int(n_prompt * ARGS.usage_scale)
    tail = "data: %s\n\n" % json.dumps({"choices": [], "usage": usage})
    writer.write(chunk(tail.encode()) + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    entry["prompt_tokens"] = n_prompt
    entry["output_tokens"] = n_out


async def broken(path, writer):
    """Returns False when the connection must close after this response."""
    ev = b'data: {"choices":[{"text":"x"}]}\n\n'
    if path == "/ok":
        writer.write(simple("200 OK", b"ok"))
        return True
    if path == "/okclose":  # keep-alive by the headers, but the server closes anyway
        writer.write(simple("200 OK", b"ok"))
        return False
    if path == "/eofbody":
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nhello, until close")
        return False
    if path == "/truncated":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        return False
    if path == "/badstatus":
        writer.write(b"HTTP/1.1 OK\r\n\r\n")
        return False
    if path == "/badchunk":
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")
        return False
    if path == "/hugeheaders":
        pad = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 100) for i in range(2000))
        writer.write(b"HTTP/1.1 200 OK\r\n" + pad + b"Content-Length: 2\r\n\r\nok")
        return False
    if path == "/halfstream":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunk(ev) * 3 + chunk(ev[:9]))
        return False
    if path == "/halfstream_eof":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + ev * 3)
        return False
    if path == "/hang":
        await asyncio.sleep(3600)
    if path == "/stallstream":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunk(ev) * 2)
        await writer.drain()
        await asyncio.sleep(3600)
    if path == "/503":
        writer.write(simple("503 Service Unavailable", b"busy"))
        return True
    if path == "/closenow":
        return False
    if path.startswith("/garbage"):
        # seeded random fragments of HTTP: status lines, headers, chunk sizes, SSE, junk
        import random
        rng = random.Random(path)
        parts = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 ", b"Content-Length: 5\r\n",
                 b"Content-Length: x\r\n", b"Transfer-Encoding: chunked\r\n",
                 b"Content-Type: text/event-stream\r\n", b"\r\n", b"5\r\nhello\r\n",
                 b"0\r\n\r\n", b"ffffffffffffffffff\r\n", b"data: {\"choices\":[1]}\n\n",
                 b"data: [DONE]\n\n", b"\x00\xff\r\r\n", b"X: " + b"y" * 9000 + b"\r\n"]
        writer.write(b"".join(rng.choice(parts) for _ in range(rng.randint(0, 12))))
        return rng.random() < 0.5
    writer.write(simple("404 Not Found", b"no"))
    return True


async def handle(reader, writer):
    try:
        while True:
            try:
                t, method, path, headers, body = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                break
            STATE["inflight"] += 1
            STATE["max_inflight"] = max(STATE["max_inflight"], STATE["inflight"])
            entry = {"t": t, "method": method, "path": path, "headers": headers,
                     "body": body.decode("utf-8", "replace")}
            if STATE["first"] is None:
                STATE["first"] = t
            keep = True
            mode = ARGS.mode
            if mode == "basic":
                await asyncio.sleep(ARGS.delay)
                writer.write(simple("200 OK", b"hello"))
            elif mode == "stall":
                if not STATE["stalled"] and t >= STATE["first"] + ARGS.stall_after:
                    STATE["stalled"] = True
                    s0 = time.monotonic()
                    time.sleep(ARGS.stall)  # blocks every connection: the server stalls
                    entry["stall"] = [s0, time.monotonic()]
                writer.write(simple("200 OK", b"hello"))
            elif mode == "serial":
                time.sleep(ARGS.delay)
                writer.write(simple("200 OK", b"hello"))
            elif mode == "sse":
                await sse_stream(writer, t)
            elif mode == "llm":
                await llm_stream(writer, t, body, entry)
            else:
                keep = await broken(path, writer)
            await writer.drain()
            entry["done"] = time.monotonic()
            entry["inflight"] = STATE["inflight"]
            STATE["inflight"] -= 1
            entry["max_inflight"] = STATE["max_inflight"]
            log(entry)
            if not keep:
                break
    except ConnectionError:
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ctx = None
    if ARGS.cert:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.cert, ARGS.key)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    tmp = ARGS.ready + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"port": port}, f)
    os.rename(tmp, ARGS.ready)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["basic", "stall", "serial", "sse", "llm", "broken"])
    p.add_argument("--ready", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--stall", type=float, default=1.0)
    p.add_argument("--stall-after", type=float, default=1.0)
    p.add_argument("--tokens", type=int, default=10)
    p.add_argument("--first", type=float, default=0.1)
    p.add_argument("--gap", type=float, default=0.02)
    p.add_argument("--per-prompt", type=float, default=0.0005)
    p.add_argument("--usage-scale", type=float, default=1.0)
    p.add_argument("--cert", help="serve TLS with this certificate (and --key)")
    p.add_argument("--key")
    ARGS = p.parse_args()
    LOG = open(ARGS.log, "w")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
