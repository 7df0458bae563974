"""Load benchmark: many virtual users chatting at once with a real uvicorn server serving the real student,
or with several replicas of it behind nginx (the proxy settings of deploy/compose.yaml).

Each virtual user holds one customer's conversation after another (tests/bench/conversations.py: questions
answered from templates, orders tracked and cancellations declined through the forms, out-of-scope messages,
requests for a person), each message a request that waits for the one before. Every concurrency level runs a
warm-up (not counted), then `--duration` measured seconds. Per level the table and the JSON give requests,
req/s, latency percentiles, errors, the decisions the bot took (the mix as served), and for servers the
benchmark started, the CPU seconds their processes used per turn and the model's share of them (the threads
the model computes on: bot/model/threads.py). Only the `bot serve` processes are counted: with SQLite the
database works inside them, while PostgreSQL, Redis and nginx run in processes of their own (on the same
cores here), so CPU figures of the two stores do not compare. With `--replicas 1 2 --proxy` both setups run
one after the other in the same invocation, so their figures compare side by side:

    python tests/bench/load.py --registry var/registry --replicas 1 2 --proxy \
        --db postgresql+psycopg://postgres@127.0.0.1:5432/test --redis redis://127.0.0.1:6379/0
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.helpers.proxy, tests.bench.conversations, bot.model.threads

from bot.model.threads import is_model_thread  # noqa: E402
from tests.bench import profiling  # noqa: E402
from tests.bench.conversations import MIX, Corpus, conversation  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
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
    parser.add_argument("--json", type=Path,
                        default=ROOT / "tests" / "bench" / "results" / f"load-{dt.date.today().isoformat()}.json",
                        help="write the results here (default: tests/bench/results/load-<date>.json)")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1],
                        help="API replicas (separate `bot serve` processes on one store), one setup per number, "
                             "run one after the other (default: 1); more than one needs --proxy and --redis")
    parser.add_argument("--proxy", action="store_true",
                        help="put nginx (Debian's package) in front, configured with deploy/nginx/proxy.conf")
    parser.add_argument("--db", help="SQLAlchemy URL of the store all replicas share, e.g. "
                                     "postgresql+psycopg://postgres@127.0.0.1:5432/test (default: a temporary "
                                     "SQLite file per setup)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment variable for the started server (repeatable)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the started servers with py-spy during the levels: collapsed stacks are "
                             "written to DIR and the top frames printed. The sampler takes CPU too, so a profiled "
                             "run's figures are not the ones to quote")
    args = parser.parse_args()
    if max(args.replicas) > 1 and not (args.proxy and args.redis):
        parser.error("more than one replica needs --proxy (one address to load) and --redis (shared live events)")
    if args.url and (args.proxy or args.replicas != [1] or args.profile):
        parser.error("--url benchmarks a running server: no --replicas, --proxy or --profile with it")
    return args


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


def start_server(registry: Path, tmp: Path, args: argparse.Namespace, db_url: str,
                 name: str = "server") -> tuple[subprocess.Popen, str, Path]:
    """`python -m bot serve` on a free port; its log goes to a file, not the table. No rate limit (we measure
    the bot, not the limiter) and no access log (a proxy in front keeps that)."""
    port = free_port()
    env = {**os.environ, "DISTILBOT_RATE_LIMIT": "off", "DISTILBOT_NEW_CONVERSATION_CAP": "off",
           "DISTILBOT_HANDOFF_CAP": "off", "DISTILBOT_ACCESS_LOG": "false"}
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    cmd = [PYTHON, "-m", "bot", "serve", "--registry", str(registry), "--db", db_url,
           "--port", str(port), "--seed-orders", "data/orders.json", "--workers", str(args.workers)]
    if args.redis:
        cmd += ["--redis", args.redis]
    log = tmp / f"{name}.log"
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


@dataclass
class Tally:
    """What one level's virtual users saw in the measured window."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    decisions: Counter = field(default_factory=Counter)
    completed: int = 0
    """Turns answered inside the window, wherever they started: what the servers' CPU in it was spent on."""


async def user(client: aiohttp.ClientSession, corpus: Corpus, rng: random.Random, warm_end: float, end: float,
               tally: Tally) -> None:
    """One visitor after another, each holding one conversation (a new one after an error, too)."""
    while time.perf_counter() < end:
        session_id = token = None
        for message in conversation(corpus, rng):
            if time.perf_counter() >= end:
                return
            body = {"message": message}
            headers = {}
            if session_id:
                body["session_id"] = session_id
                headers["Authorization"] = f"Bearer {token}"
            start = time.perf_counter()
            error, decision = None, None
            try:
                async with client.post("/api/chat", json=body, headers=headers) as response:
                    if response.status < 300:
                        data = await response.json()
                        session_id, token = data["session_id"], data.get("session_token") or token
                        decision = data["decision"]
                    else:
                        error = f"HTTP {response.status}: {(await response.text())[:200]}"
            except Exception as exc:  # a load test counts every failure rather than stopping
                error = f"{type(exc).__name__}: {exc}"[:200]
            done = time.perf_counter()
            if not error and warm_end <= done <= end:
                tally.completed += 1
            if start >= warm_end and done <= end:
                tally.latencies.append(done - start)
                if error:
                    tally.errors += 1
                    if len(tally.error_examples) < MAX_ERROR_EXAMPLES:
                        tally.error_examples.append(error)
                else:
                    tally.decisions[decision] += 1
            if error:
                break


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class CpuTimes:
    total: float
    model: float
    """Seconds on the threads named as the model's (bot/model/threads.py)."""

    def __sub__(self, other: CpuTimes) -> CpuTimes:
        return CpuTimes(self.total - other.total, self.model - other.model)


TICK = os.sysconf("SC_CLK_TCK")


def _ticks(stat_file: Path) -> tuple[str, int]:
    """A process's or thread's name and its user + system CPU time in clock ticks, from /proc's stat line."""
    stat = stat_file.read_text()
    name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
    return name, int(rest[11]) + int(rest[12])  # fields 14 and 15: utime, stime


def server_pids(root: int) -> list[int]:
    """`root` and every process under it (uvicorn's workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += parents.get(pid, [])
    return pids


def cpu_times(roots: list[int]) -> CpuTimes:
    """CPU seconds the server processes (and their workers) have used so far, and the model threads' part."""
    total = model = 0
    for root in roots:
        for pid in server_pids(root):
            with contextlib.suppress(OSError):  # a process that ended meanwhile
                total += _ticks(Path(f"/proc/{pid}/stat"))[1]
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError):
                        name, ticks = _ticks(task / "stat")
                        model += ticks if is_model_thread(name) else 0
    return CpuTimes(total / TICK, model / TICK)


async def run_level(client: aiohttp.ClientSession, corpus: Corpus, concurrency: int, warmup: float,
                    duration: float, server_roots: list[int]) -> dict:
    """Warm-up then measurement for one level; only requests sent and answered inside the window count, and
    the servers' CPU is read at the window's start and end."""
    tally = Tally()
    warm_end = time.perf_counter() + warmup
    end = warm_end + duration

    async def sample_cpu() -> CpuTimes | None:
        await asyncio.sleep(max(0.0, warm_end - time.perf_counter()))
        before = cpu_times(server_roots) if server_roots else None
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        return cpu_times(server_roots) - before if server_roots else None

    users = [user(client, corpus, random.Random(SEED * 1000 + n), warm_end, end, tally) for n in range(concurrency)]
    cpu, *_ = await asyncio.gather(sample_cpu(), *users)
    ms = sorted(1000 * x for x in tally.latencies)
    answered = tally.completed
    per_turn = {}
    if cpu is not None and answered:
        per_turn = {"cpu_ms_per_turn": round(1000 * cpu.total / answered, 2),
                    "model_cpu_ms_per_turn": round(1000 * cpu.model / answered, 2),
                    "other_cpu_ms_per_turn": round(1000 * (cpu.total - cpu.model) / answered, 2),
                    "model_share": round(cpu.model / cpu.total, 3) if cpu.total else None,
                    "server_cpu_s": round(cpu.total, 2)}
    return {"concurrency": concurrency, "requests": len(ms), "req_per_s": round(len(ms) / duration, 2),
            "p50_ms": round(percentile(ms, 0.5), 1), "p90_ms": round(percentile(ms, 0.9), 1),
            "p99_ms": round(percentile(ms, 0.99), 1), "max_ms": round(ms[-1], 1) if ms else float("nan"),
            "errors": tally.errors, "error_examples": tally.error_examples, **per_turn,
            "decisions": dict(tally.decisions.most_common())}


async def run_levels(url: str, args: argparse.Namespace, corpus: Corpus, server_roots: list[int]) -> list[dict]:
    size = max(args.concurrency)
    # aiohttp, not httpx: on these 2 cores the client shares the CPU with the server, and httpx spends about
    # 2.3 ms of CPU per request where aiohttp spends 0.4. Idle connections expire before uvicorn's keep-alive
    # (5 s) closes them, as nginx's do.
    connector = aiohttp.TCPConnector(limit=size, keepalive_timeout=4.0)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        levels = []
        for concurrency in args.concurrency:
            print(f"level {concurrency}: {args.warmup:g} s warm-up, {args.duration:g} s measured", flush=True)
            levels.append(await run_level(client, corpus, concurrency, args.warmup, args.duration, server_roots))
        return levels


def table(levels: list[dict]) -> str:
    cols = [("concurrency", "concurrency", "{}"), ("requests", "requests", "{}"), ("req/s", "req_per_s", "{:.1f}"),
            ("p50 ms", "p50_ms", "{:.1f}"), ("p90 ms", "p90_ms", "{:.1f}"), ("p99 ms", "p99_ms", "{:.1f}"),
            ("max ms", "max_ms", "{:.1f}"), ("errors", "errors", "{}"), ("CPU ms/turn", "cpu_ms_per_turn", "{:.2f}"),
            ("model ms", "model_cpu_ms_per_turn", "{:.2f}"), ("other ms", "other_cpu_ms_per_turn", "{:.2f}"),
            ("model share", "model_share", "{:.0%}")]
    lines = ["  ".join(f"{title:>11}" for title, _, _ in cols)]
    lines += ["  ".join(f"{fmt.format(level[key]) if level.get(key) is not None else '-':>11}"
                        for _, key, fmt in cols) for level in levels]
    for level in levels:
        total = sum(level["decisions"].values()) or 1
        mix = ", ".join(f"{name} {count / total:.0%}" for name, count in level["decisions"].items())
        lines.append(f"  decisions at concurrency {level['concurrency']}: {mix}")
    for level in levels:
        for example in level["error_examples"]:
            lines.append(f"  error at concurrency {level['concurrency']}: {example}")
    return "\n".join(lines)


def run_setup(replicas: int, registry: Path, tmp: Path, args: argparse.Namespace,
              corpus: Corpus) -> tuple[dict, list[dict]]:
    """Start `replicas` servers (and nginx in front with --proxy), load them level by level, stop them.
    Returns the health of the address loaded and the levels."""
    db_url = args.db or f"sqlite:///{tmp / f'bot-{replicas}.db'}"
    servers = []
    try:
        for n in range(replicas):
            servers.append(start_server(registry, tmp, args, db_url, f"server-{replicas}-{n}"))
            if wait_healthy(servers[-1][1], servers[-1][0]) is None:
                raise RuntimeError(f"replica {n} did not come up:\n{servers[-1][2].read_text()[-4000:]}")
        with contextlib.ExitStack() as stack:
            url = servers[0][1]
            if args.proxy:
                from tests.helpers.proxy import nginx_in_front

                url = stack.enter_context(nginx_in_front([u.removeprefix("http://") for _, u, _ in servers],
                                                         free_port(), workers=1))
            health = wait_healthy(url, None)
            print(f"{replicas} replica(s){' behind nginx' if args.proxy else ''} at {url}", flush=True)
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                samplers = [(profiling.start(proc.pid, args.profile / f"{log.stem}.txt"), log.stem)
                            for proc, _, log in servers]
            try:
                return health, asyncio.run(run_levels(url, args, corpus, [proc.pid for proc, _, _ in servers]))
            finally:
                for sampler, name in samplers if args.profile else []:
                    profiling.stop(sampler)
                    print(f"\nprofile of {name} ({args.profile / f'{name}.txt'}):")
                    print(profiling.summary(args.profile / f"{name}.txt"))
    finally:
        for proc, _, _ in servers:
            stop_server(proc)


def main() -> int:
    args = parse_args()
    corpus = Corpus.load()
    setups = []
    with tempfile.TemporaryDirectory(prefix="distilbot-load-") as tmp_name:
        tmp = Path(tmp_name)
        if args.url:
            url = args.url.rstrip("/")
            health = wait_healthy(url, None)
            if health is None:
                print(f"the server at {url} did not answer GET /health with 200", file=sys.stderr)
                return 1
            setups.append({"replicas": None, "proxy": None, "url": url, "health": health,
                           "levels": asyncio.run(run_levels(url, args, corpus, []))})
        else:
            registry = args.registry
            if registry is None:
                registry = tmp / "registry"
                try:
                    distil(registry)
                except subprocess.CalledProcessError as exc:
                    print(f"distillation failed (exit {exc.returncode}); no server to benchmark", file=sys.stderr)
                    return 1
            for replicas in args.replicas:
                try:
                    health, levels = run_setup(replicas, registry.resolve(), tmp, args, corpus)
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    return 1
                setups.append({"replicas": replicas, "proxy": "nginx" if args.proxy else None,
                               "workers_per_replica": args.workers, "health": health, "levels": levels})
    machine = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    health = setups[0]["health"]
    git = lambda *args: subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    result = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "commit": git("rev-parse", "HEAD"),
              "uncommitted_changes": git("status", "--porcelain").splitlines(),
              "command": " ".join([os.path.relpath(sys.executable, ROOT), *sys.argv]),
              "server": {"model_version": health.get("model_version"), "backend": health.get("backend"),
                         "store": "given by --url" if args.url else (args.db or "sqlite (temporary)").split("@")[-1],
                         "redis": bool(args.redis)},
              "machine": machine, "duration_s": args.duration, "warmup_s": args.warmup,
              "traffic": MIX,
              "setups": [{k: v for k, v in setup.items() if k != "health"} for setup in setups]}
    for setup in setups:
        if setup["replicas"] is not None:
            print(f"\n{setup['replicas']} replica(s), {setup['workers_per_replica']} worker(s) each"
                  f"{', behind nginx' if setup['proxy'] else ''}:")
        print(table(setup["levels"]))
    if len(setups) > 1:
        print(compare(setups))
    print("CPU: of the `bot serve` processes only (not the client, PostgreSQL, Redis or nginx), per answered turn")
    print(f"model {result['server']['model_version']}  backend {result['server']['backend']}  store "
          f"{result['server']['store']}  |  {machine['cpu_count']} CPUs  Python {machine['python']}  "
          f"{machine['platform']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


def compare(setups: list[dict]) -> str:
    """Each setup's req/s and p99 against the first's, level by level."""
    base = setups[0]
    lines = ["", f"against {base['replicas']} replica(s):"]
    for setup in setups[1:]:
        for mine, theirs in zip(setup["levels"], base["levels"]):
            ratio = mine["req_per_s"] / theirs["req_per_s"] if theirs["req_per_s"] else float("nan")
            lines.append(f"  {setup['replicas']} replicas, concurrency {mine['concurrency']}: {ratio:.2f}x req/s, "
                         f"p99 {mine['p99_ms']:.1f} ms vs {theirs['p99_ms']:.1f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the server is already stopped by main's finally
        sys.exit(130)
