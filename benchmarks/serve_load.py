"""Load benchmark of the web app: a real server (`serve.py` in a subprocess on 127.0.0.1 and a free port), many
concurrent clients sending articles to POST /api/predict.

    python benchmarks/serve_load.py --model runs/latest [--clients 50] [--requests 20] [--deadline 900]

Prints errors, p50/p95 latency and paragraphs/s. Every request and the whole run are bounded in time; the server
is stopped at the end (and by `timeout` should this script be killed). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np

from event_classifier.io import atomic_write_json

PROJECT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(model: str, feedback_dir: Path, lifetime: int = 900, start_timeout: float = 180,
                   extra: tuple[str, ...] = ()) -> Iterator[str]:
    """`serve.py --model MODEL` on 127.0.0.1 and a free port, until the block ends (or `lifetime` seconds pass, as a
    guard against a killed caller); yields its base URL once /api/health answers."""
    port = free_port()
    command = ["timeout", str(lifetime), sys.executable, str(PROJECT / "serve.py"), "--model", str(model),
               "--port", str(port), "--feedback-dir", str(feedback_dir), "--no-cache", *extra]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server stopped: {process.stdout.read()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() - started > start_timeout:
                raise RuntimeError(f"the server did not answer within {start_timeout:g} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _client(client: httpx.AsyncClient, url: str, body: dict, requests: int, deadline: float,
                  latencies: list[float], errors: list[str], paragraphs: list[int]) -> None:
    for _ in range(requests):
        if time.monotonic() > deadline:
            errors.append("not sent: the run's deadline passed")
            continue
        start = time.perf_counter()
        try:
            response = await client.post(f"{url}/api/predict", json=body)
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
                continue
            paragraphs.append(len(response.json()["paragraphs"]))
            latencies.append(time.perf_counter() - start)
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")


async def load(url: str, body: dict, clients: int, requests: int, deadline_s: float, request_timeout: float) -> dict:
    """`clients` concurrent clients each sending `requests` requests; figures of the whole run."""
    latencies: list[float] = []
    errors: list[str] = []
    paragraphs: list[int] = []
    deadline = time.monotonic() + deadline_s
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=request_timeout, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(_client(client, url, body, requests, deadline, latencies, errors, paragraphs)
                               for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"clients": clients, "requests": clients * requests, "ok": len(latencies), "errors": len(errors),
            "error_examples": sorted(set(errors))[:5], "wall_s": round(wall, 1),
            "p50_s": round(float(np.percentile(latencies, 50)), 3) if latencies else None,
            "p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
            "paragraphs_per_s": round(sum(paragraphs) / wall, 1), "requests_per_s": round(len(latencies) / wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="run or model folder to serve")
    parser.add_argument("--article", default=str(PROJECT / "examples" / "article.txt"), help="the article every request sends")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="requests per client")
    parser.add_argument("--deadline", type=float, default=900, help="seconds after which no request is sent")
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--output", default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    body = {"article": Path(args.article).read_text(encoding="utf-8")}
    with tempfile.TemporaryDirectory() as feedback, \
            running_server(args.model, Path(feedback), lifetime=int(args.deadline + args.request_timeout + 300)) as url:
        figures = asyncio.run(load(url, body, args.clients, args.requests, args.deadline, args.request_timeout))
    print(f"{figures['requests']} requests ({figures['clients']} clients x {args.requests}) in {figures['wall_s']} s: "
          f"{figures['errors']} errors, p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
          f"{figures['paragraphs_per_s']} paragraphs/s ({figures['requests_per_s']} requests/s)")
    for example in figures["error_examples"]:
        print(f"  error: {example}")
    if args.output:
        atomic_write_json(args.output, figures)


if __name__ == "__main__":
    main()
