"""API under load: a real ``restyle serve`` on loopback, closed-loop clients at several concurrencies.

For each concurrency (1, 4, 16, 64 by default; ``--seconds`` each) the
clients post the bundled sample photo to ``/v1/stylize`` back to back and
we report requests/s, p50/p95/p99 latency of successful requests, errors
and 429s. Clients honour ``Retry-After`` (capped at 1 s), as a well-behaved
client would; a 429 storm would otherwise steal the CPU the server needs.

"vs raw" compares the server's throughput with the runtime's own, measured
just before each level in the same run, on the same model and photo: ``Stylizer.stylize`` called
from as many threads as the server's pool, with the same threads per call,
no HTTP, no decode/encode. The gap is the price of HTTP, JPEG decode and
encode, and admission control.

``--batch-size N`` additionally compares, at concurrency 16, the default
server with one micro-batching up to N requests, in interleaved rounds.

The network is a seeded random ``fast`` model exported like ``restyle
export`` does (speed does not depend on the weights), unless ``--models``
points at real ones. Server and clients share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SECTION = "API load"
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "restyle" / "assets" / "sample.jpg"


@dataclass
class LoadResult:
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    rejected: int = 0
    errors: int = 0
    raw: float = 0.0  # the runtime's images/s measured just before this level

    def merge(self, other: LoadResult) -> LoadResult:
        """Combine rounds of the same configuration (interleaved A/B runs)."""
        return LoadResult(
            self.concurrency,
            self.seconds + other.seconds,
            self.latencies + other.latencies,
            self.rejected + other.rejected,
            self.errors + other.errors,
            (self.raw * self.seconds + other.raw * other.seconds) / (self.seconds + other.seconds),
        )

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


# -- models and server ---------------------------------------------------------------------------


def build_model(root: Path) -> Path:
    from restyle.export.onnx_export import export_untrained

    models = root / "models"
    models.mkdir(exist_ok=True)
    export_untrained("fast", models / "bench.onnx", ["bench"])
    return models


class Server:
    """``python -m restyle serve --port 0`` with the given RESTYLE_* settings; the port comes from its banner."""

    def __init__(self, models: Path, env: dict[str, str]):
        from restyle.settings import child_environment

        full = child_environment(drop_restyle=True)
        full.update({"RESTYLE_BUNDLED": "false", "RESTYLE_ACCESS_LOG": "false", "RESTYLE_LOG_LEVEL": "info"})
        full.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restyle", "serve", "--port", "0", "--models", str(models)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full,
            cwd=REPO,
        )
        self.url = ""
        log: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            log.append(line)
            if m := re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line):
                self.url = m.group(1)
                break
        if not self.url:
            raise RuntimeError("server did not start:\n" + "".join(log))
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        deadline = time.monotonic() + 120
        while httpx.get(self.url + "/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- measurements --------------------------------------------------------------------------------


class RawRunner:
    """``Stylizer.stylize`` alone from ``pool`` threads: the ceiling the server is measured against.

    Measured right before each load level (with the server idle), so that a
    change in background load on a shared machine shows up in both numbers.
    """

    def __init__(self, models: Path, style: str, max_size: int, pool: int, threads: int):
        from restyle.imaging import decode_image
        from restyle.runtime import Registry, StylizeOptions

        self.stylizer = Registry(user_dir=models, bundled_dir=models).get(style, provider="cpu", threads=threads)
        self.photo = decode_image(SAMPLE)
        self.options = StylizeOptions(max_size=max_size)
        self.pool = pool
        self.stylizer.stylize(self.photo, self.options)  # warm-up

    def measure(self, seconds: float) -> float:
        done = [0] * self.pool
        end = time.perf_counter() + seconds

        def loop(i: int) -> None:
            while time.perf_counter() < end:
                self.stylizer.stylize(self.photo, self.options)
                done[i] += 1

        workers = [threading.Thread(target=loop, args=(i,)) for i in range(self.pool)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return sum(done) / (time.perf_counter() - start)


async def _load(url: str, body: bytes, params: dict[str, str], concurrency: int, seconds: float) -> LoadResult:
    result = LoadResult(concurrency, seconds)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        end = start + seconds

        async def worker() -> None:
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        "/v1/stylize", params=params, content=body, headers={"content-type": "image/jpeg"}
                    )
                except httpx.HTTPError:
                    result.errors += 1
                    continue
                if r.status_code == 200:
                    result.latencies.append(time.perf_counter() - t0)
                elif r.status_code == 429:
                    result.rejected += 1
                    await asyncio.sleep(min(1.0, float(r.headers.get("retry-after", "1"))))
                else:
                    result.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


def load(url: str, params: dict[str, str], concurrency: int, seconds: float) -> LoadResult:
    return asyncio.run(_load(url, SAMPLE.read_bytes(), params, concurrency, seconds))


def row(r: LoadResult, label: str | None = None) -> list[str]:
    ms = lambda v: f"{v * 1000:.0f}"  # noqa: E731
    return [
        label or str(r.concurrency),
        f"{r.rps:.2f}",
        ms(r.pct(50)),
        ms(r.pct(95)),
        ms(r.pct(99)),
        str(len(r.latencies)),
        str(r.rejected),
        str(r.errors),
        f"{r.raw:.2f}",
        f"{r.rps / r.raw:.0%}" if r.raw > 0 else "n/a",
    ]


HEADER = ["concurrency", "req/s", "p50 ms", "p95 ms", "p99 ms", "ok", "429", "errors", "raw img/s", "vs raw"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.api_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each concurrency level (default 20)")
    p.add_argument("--concurrency", default="1,4,16,64", help="comma-separated client counts")
    p.add_argument("--models", type=Path, help="directory of .onnx styles (default: a random 'fast' network)")
    p.add_argument("--style", default=None, help="style to request (default: the first in --models)")
    p.add_argument("--max-size", type=int, default=512, help="max_size of each request (default 512)")
    p.add_argument("--pool-size", type=int, default=0, help="server RESTYLE_POOL_SIZE (0 = cores)")
    p.add_argument("--threads", type=int, default=0, help="server RESTYLE_THREADS (0 = cores / pool)")
    p.add_argument("--queue-size", type=int, default=16, help="server RESTYLE_QUEUE_SIZE (default 16)")
    p.add_argument("--batch-size", type=int, default=1, help="also measure micro-batching of up to N at c=16")
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--quick", action="store_true", help="3 s per level (for smoke runs)")
    p.add_argument("--write", type=Path, help="merge the table into this markdown file (## API load)")
    args, _unknown = p.parse_known_args(argv)  # `python -m bench` passes every benchmark's flags through
    seconds = 3.0 if args.quick and args.seconds == 20.0 else args.seconds
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    from restyle.settings import Settings, cpu_count

    settings = Settings(pool_size=args.pool_size, threads=args.threads, _env_file=None)  # type: ignore[call-arg]
    pool, threads = settings.effective_pool_size, settings.effective_threads

    with tempfile.TemporaryDirectory(prefix="restyle-api-load-") as tmp:
        models = args.models or build_model(Path(tmp))
        style = args.style or sorted(p.stem for p in models.glob("*.onnx"))[0]
        params = {"style": style, "max_size": str(args.max_size), "format": "jpeg", "quality": "90"}
        env = {
            "RESTYLE_PROVIDER": "cpu",
            "RESTYLE_POOL_SIZE": str(pool),
            "RESTYLE_THREADS": str(threads),
            "RESTYLE_QUEUE_SIZE": str(args.queue_size),
            "RESTYLE_REQUEST_TIMEOUT": "60",
            "RESTYLE_MAX_SIZE_LIMIT": str(max(4096, args.max_size)),
        }
        raw_seconds = max(2.0, seconds / 2)
        runner = RawRunner(models, style, args.max_size, pool, threads)

        def level(url: str, c: int, secs: float) -> LoadResult:
            raw = runner.measure(raw_seconds)
            result = load(url, params, c, secs)
            result.raw = raw
            print("  " + " | ".join(row(result)), flush=True)
            return result

        server = Server(models, env)
        results: list[LoadResult] = []
        try:
            load(server.url, params, 1, min(2.0, seconds))  # warm the connection path; not reported
            for c in levels:
                print(f"concurrency {c} for {seconds:g} s (raw runtime {raw_seconds:g} s first)...", flush=True)
                results.append(level(server.url, c, seconds))
        finally:
            server.stop()

        batch_rows: list[list[str]] = []
        if args.batch_size > 1:
            # Interleaved A/B rounds against two servers (the idle one costs nothing), so that drifting
            # background load on a shared machine hits both configurations alike.
            batched_env = {**env, "RESTYLE_BATCH_SIZE": str(args.batch_size)}
            batched_env["RESTYLE_BATCH_WAIT_MS"] = str(args.batch_wait_ms)
            plain, batched = Server(models, env), Server(models, batched_env)
            a: LoadResult | None = None
            b: LoadResult | None = None
            try:
                for _ in range(2):
                    print(f"concurrency 16, batch 1 vs batch <= {args.batch_size}, {seconds / 2:g} s each...")
                    ra, rb = level(plain.url, 16, seconds / 2), level(batched.url, 16, seconds / 2)
                    a, b = (ra, rb) if a is None or b is None else (a.merge(ra), b.merge(rb))
            finally:
                plain.stop()
                batched.stop()
            assert a is not None and b is not None
            batch_rows = [row(a, "16, batch 1 (default)"), row(b, f"16, batch <= {args.batch_size}")]

    from bench.common import report

    photo = "the bundled 768x512 sample photo"
    note = (
        f"`python -m bench api_load --seconds {seconds:g}`: {photo} posted to `/v1/stylize` "
        f"(max_size {args.max_size}, JPEG out) by closed-loop clients on loopback; {seconds:g} s per level. "
        f"Server: pool {pool} x {threads} ORT thread(s), queue {args.queue_size}, CPU provider; "
        f"{cpu_count()} cores shared by server and clients ({platform.processor() or platform.machine()}). "
        f"'raw img/s' is `Stylizer.stylize` alone from {pool} thread(s) (no HTTP, decode or encode), "
        "measured just before each level in the same run; 'vs raw' is req/s divided by it. "
        "Latency percentiles are over successful requests; 429s are answered at once and the clients "
        "wait Retry-After (<= 1 s) before retrying."
    )
    extra = ""
    if batch_rows:
        from bench.common import table

        extra = "Micro-batching, same run and photo size, two interleaved rounds per configuration:\n\n" + table(
            HEADER, batch_rows
        )
    report(SECTION, HEADER, [row(r) for r in results], write=args.write, note=note, extra=extra)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
