"""Load benchmark: many virtual users chatting at once with a real uvicorn server serving the real student.

Each virtual user holds its own conversation (session id + bearer token), sends the test set's messages in a
shuffled but fixed order and starts a new conversation every 20 turns. Every concurrency level runs a warm-up
(not counted), then `--duration` measured seconds; the table and the JSON give requests, req/s, latency
percentiles and errors per level, with the served model version and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TURNS_PER_CONVERSATION = 20
MAX_ERROR_EXAMPLES = 5
SEED = 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", type=Path,
                        help="model registry to serve; omitted (and no --url): one is distilled from data/ into a "
                             "temporary folder first (several minutes on a CPU)")
    parser.add_argument("--url", help="benchmark this already running server (e.g. http://127.0.0.1:8000) "
                                      "instead of starting one; --registry is then not needed")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level (default: 20)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32],
                        help="virtual users per level, one level each (default: 1 8 32)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of load before each level's measurement, not counted (default: 3)")
    parser.add_argument("--workers", type=int, default=1,
                        help="server processes (`bot serve --workers`, default: 1); more than one needs --redis")
    parser.add_argument("--redis", help="Redis URL for the started server's events and rate limits (needed with "
                                        "--workers > 1), e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, default=ROOT / "tests" / "bench" / "results" / "load.json",
                        help="write the results here (default: tests/bench/results/load.json)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment variable for the started server (repeatable)")
    return parser.parse_args()


def load_messages() -> list[str]:
    """The test set's messages: a realistic mix of intents, phrasings and out-of-scope requests."""
    lines = (ROOT / "data" / "test.jsonl").read_text().splitlines()
    messages = [json.loads(line)["text"] for line in lines if line.strip()]
    random.Random(SEED).shuffle(messages)
    return messages


def distil(registry: Path) -> None:
    """The same distillation `make demo` runs, so the benchmark serves the real student."""
    cmd = [PYTHON, "-m", "distill", "run", "--train", "data/train.jsonl", "--test", "data/test.jsonl",
           "--templates", "data/templates.yml", "--config", "configs/distill.yaml", "--registry", str(registry)]
    print("distilling:", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(registry: Path, tmp: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str, Path]:
    """`python -m bot serve` on a free port with its own SQLite store; its log goes to a file, not the table.
    No rate limit (we measure the bot, not the limiter) and no access log (a proxy in front keeps that)."""
    port = free_port()
    env = {**os.environ, "DISTILBOT_RATE_LIMIT": "off", "DISTILBOT_ACCESS_LOG": "false"}
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    cmd = [PYTHON, "-m", "bot", "serve", "--registry", str(registry), "--db", f"sqlite:///{tmp / 'bot.db'}",
           "--port", str(port), "--seed-orders", "data/orders.json", "--workers", str(args.workers)]
    if args.redis:
        cmd += ["--redis", args.redis]
    log = tmp / "server.log"
    print("starting:", " ".join(cmd), flush=True)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float = 120.0) -> dict | None:
    """Poll GET /health until 200; None when the server died or did not come up in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200:
                return response.json()
        time.sleep(0.5)
    return None


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def user(client: httpx.AsyncClient, messages: list[str], offset: int, warm_end: float, end: float,
               latencies: list[float], errors: list[str], counts: dict) -> None:
    """One visitor: its own conversation, renewed every TURNS_PER_CONVERSATION turns or after an error."""
    session_id = token = None
    turn = 0
    i = offset
    while time.perf_counter() < end:
        if turn == TURNS_PER_CONVERSATION:
            session_id = token = None
            turn = 0
        body = {"message": messages[i % len(messages)]}
        headers = {}
        if session_id:
            body["session_id"] = session_id
            headers["Authorization"] = f"Bearer {token}"
        i += 1
        start = time.perf_counter()
        error = None
        try:
            response = await client.post("/api/chat", json=body, headers=headers)
            if response.is_success:
                if session_id is None:
                    data = response.json()
                    session_id, token = data["session_id"], data["session_token"]
                turn += 1
            else:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
        except Exception as exc:  # a load test counts every failure rather than stopping
            error = f"{type(exc).__name__}: {exc}"[:200]
        done = time.perf_counter()
        if error:
            session_id = token = None
            turn = 0
        if start >= warm_end and done <= end:
            latencies.append(done - start)
            if error:
                counts["errors"] += 1
                if len(errors) < MAX_ERROR_EXAMPLES:
                    errors.append(error)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


async def run_level(client: httpx.AsyncClient, messages: list[str], concurrency: int, warmup: float,
                    duration: float) -> dict:
    """Warm-up then measurement for one level; only requests sent and answered inside the window count."""
    latencies: list[float] = []
    errors: list[str] = []
    counts = {"errors": 0}
    warm_end = time.perf_counter() + warmup
    end = warm_end + duration
    stride = max(1, len(messages) // concurrency)
    await asyncio.gather(*(user(client, messages, n * stride, warm_end, end, latencies, errors, counts)
                           for n in range(concurrency)))
    ms = sorted(1000 * x for x in latencies)
    return {"concurrency": concurrency, "requests": len(ms), "req_per_s": round(len(ms) / duration, 2),
            "p50_ms": round(percentile(ms, 0.5), 1), "p90_ms": round(percentile(ms, 0.9), 1),
            "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(ms[-1], 1) if ms else float("nan"),
            "errors": counts["errors"], "error_examples": errors}


async def run_levels(url: str, args: argparse.Namespace, messages: list[str]) -> list[dict]:
    size = max(args.concurrency)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:  # HTTP/1.1, keep-alive
        levels = []
        for concurrency in args.concurrency:
            print(f"level {concurrency}: {args.warmup:g} s warm-up, {args.duration:g} s measured", flush=True)
            levels.append(await run_level(client, messages, concurrency, args.warmup, args.duration))
        return levels


def table(levels: list[dict]) -> str:
    cols = [("concurrency", "concurrency", "{}"), ("requests", "requests", "{}"), ("req/s", "req_per_s", "{:.1f}"),
            ("p50 ms", "p50_ms", "{:.1f}"), ("p90 ms", "p90_ms", "{:.1f}"), ("p99 ms", "p99_ms", "{:.1f}"),
            ("max ms", "max_ms", "{:.1f}"), ("errors", "errors", "{}")]
    lines = ["  ".join(f"{title:>11}" for title, _, _ in cols)]
    lines += ["  ".join(f"{fmt.format(level[key]):>11}" for _, key, fmt in cols) for level in levels]
    for level in levels:
        for example in level["error_examples"]:
            lines.append(f"  error at concurrency {level['concurrency']}: {example}")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    messages = load_messages()
    proc = None
    with tempfile.TemporaryDirectory(prefix="distilbot-load-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            if args.url:
                url = args.url.rstrip("/")
            else:
                registry = args.registry
                if registry is None:
                    registry = tmp / "registry"
                    try:
                        distil(registry)
                    except subprocess.CalledProcessError as exc:
                        print(f"distillation failed (exit {exc.returncode}); no server to benchmark", file=sys.stderr)
                        return 1
                proc, url, log = start_server(registry.resolve(), tmp, args)
            health = wait_healthy(url, proc)
            if health is None:
                print(f"the server at {url} did not answer GET /health with 200", file=sys.stderr)
                if proc is not None:
                    print(log.read_text()[-4000:], file=sys.stderr)
                return 1
            levels = asyncio.run(run_levels(url, args, messages))
        finally:
            if proc is not None:
                stop_server(proc)
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "url": url,
              "server": {"model_version": health.get("model_version"), "backend": health.get("backend"),
                         "workers": args.workers if proc is not None else None,
                         "started_by_benchmark": proc is not None},
              "machine": machine, "duration_s": args.duration, "warmup_s": args.warmup,
              "turns_per_conversation": TURNS_PER_CONVERSATION, "levels": levels}
    print(table(levels))
    print(f"model {result['server']['model_version']}  backend {result['server']['backend']}  "
          f"workers {result['server']['workers'] or '?'}  |  {machine['cpu_count']} CPUs  "
          f"Python {machine['python']}  {machine['platform']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the server is already stopped by main's finally
        sys.exit(130)
