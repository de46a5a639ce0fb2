"""HTTP part of benchmarks/features.py: the servers, a load generator and a minimal app.

    .venv/bin/python benchmarks/features_http.py load CONFIG.json       # the load generator
    .venv/bin/python benchmarks/features_http.py minimal DB PORT        # the minimal app

The load generator keeps ``concurrency`` HTTP/1.1 keep-alive connections busy (asyncio, one
request in flight per connection) for ``seconds`` after ``warmup`` seconds, POSTing one body
after another (one entity each), and counts 2xx answers, other statuses and connection errors
(a reset or a closed connection: the connection is opened again). The minimal app is the
floor the issue names: Starlette over the plain SQLite table of the hand materialization,
one primary-key read per entity, no access log. Servers run in their own process group, which
:func:`stop` ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

MARKER = "BENCH-JSON "
FEATURES = [f"f{i}" for i in range(10)]
TTL_US = 7 * 86_400 * 1_000_000


# -- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(command: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> Any:
    handle = log.open("wb")
    return subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
        start_new_session=True,  # its own process group: stop() ends the workers too
    )


def wait_ready(port: int, path: str, proc: Any, timeout: float = 90.0) -> bool:
    """True when GET ``path`` answers 200; False when the server exits or time runs out."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            status = connection.getresponse().status
            connection.close()
            if status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def stop(proc: Any) -> None:
    """End the server's process group (it was started in its own session)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- the load generator -------------------------------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(parts)
    else:
        body = b""
    return status, headers.get("connection") == "close", body


class Load:
    def __init__(self, config: dict[str, Any]) -> None:
        self.port = int(config["port"])
        self.path = config["path"]
        self.bodies = [body.encode() for body in config["bodies"]]
        self.concurrency = int(config["concurrency"])
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.reconnects = 0
        self.latencies_ns: list[int] = []
        self.sample: str | None = None
        self.counting = False

    async def connection(self, index: int, deadline: float) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        i = index
        while time.perf_counter() < deadline:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError as exc:
                    self.count_error(f"connect: {type(exc).__name__}")
                    await asyncio.sleep(0.01)
                    continue
            assert reader is not None
            body = self.bodies[i % len(self.bodies)]
            i += self.concurrency
            start = time.perf_counter_ns()
            try:
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                status, close, payload = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                self.count_error(type(exc).__name__)
                writer.close()
                writer = None
                continue
            elapsed = time.perf_counter_ns() - start
            if self.counting:
                if 200 <= status < 300:
                    self.ok += 1
                    self.latencies_ns.append(elapsed)
                    if self.sample is None:
                        self.sample = payload[:600].decode("utf-8", "replace")
                else:
                    self.errors[f"HTTP {status}"] += 1
            if close:
                self.reconnects += self.counting
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    def count_error(self, kind: str) -> None:
        if self.counting:
            self.errors[kind] += 1

    async def run(self, warmup: float, seconds: float) -> dict[str, Any]:
        deadline = time.perf_counter() + warmup
        await asyncio.gather(*(self.connection(i, deadline) for i in range(self.concurrency)))
        self.counting = True
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(self.connection(i, deadline) for i in range(self.concurrency)))
        elapsed = time.perf_counter() - start
        ordered = sorted(self.latencies_ns)

        def pct(q: float) -> float | None:
            return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1e3 if ordered else None

        return {
            "seconds": elapsed,
            "ok": self.ok,
            "requests_per_second": self.ok / elapsed,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "reconnects": self.reconnects,
            "latency_median_us": pct(0.5),
            "latency_p99_us": pct(0.99),
            "sample_response": self.sample,
        }


def run_load(config: dict[str, Any]) -> dict[str, Any]:
    if config.get("client") == "wrk":
        return run_wrk(config)
    load = Load(config)
    result = asyncio.run(load.run(float(config["warmup"]), float(config["seconds"])))
    return {"client": "python asyncio", **result}


WRK_SCRIPT = """
local bodies = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
"""


def run_wrk(config: dict[str, Any]) -> dict[str, Any]:
    """The same load with wrk (one thread, ``concurrency`` connections): a C client leaves
    more of the 2 cores to the server than the asyncio one."""
    import re
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="dl-bench-wrk-"))
    script, bodies = folder / "post.lua", folder / "bodies.txt"
    script.write_text(WRK_SCRIPT)
    bodies.write_text("\n".join(config["bodies"]) + "\n")
    url = f"http://127.0.0.1:{config['port']}{config['path']}"

    def wrk(seconds: float) -> str:
        command = ["wrk", "-t1", f"-c{config['concurrency']}", f"-d{max(1, round(seconds))}s"]
        command += ["--latency", "-s", str(script), url, "--", str(bodies)]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    try:
        wrk(float(config["warmup"]))
        text = wrk(float(config["seconds"]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    def number(pattern: str) -> float:
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    def latency(label: str) -> float | None:
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", text)
        if not found:
            return None
        return float(found.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6}[found.group(2)]

    requests = number(r"(\d+) requests in")
    seconds = number(r"requests in ([\d.]+)s")
    non_2xx = number(r"Non-2xx or 3xx responses: (\d+)")
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    kinds = {}
    if sockets:
        names = ("connect", "read", "write", "timeout")
        counts = zip(names, map(int, sockets.groups()), strict=True)
        kinds = {name: value for name, value in counts if value}
    if non_2xx:
        kinds["non-2xx"] = int(non_2xx)
    ok = requests - non_2xx
    return {
        "client": "wrk",
        "seconds": seconds,
        "ok": int(ok),
        "requests_per_second": ok / seconds if seconds else 0.0,
        "errors": sum(kinds.values()),
        "error_kinds": kinds,
        "latency_median_us": latency("50"),
        "latency_p99_us": latency("99"),
        "wrk_output": text,
    }


# -- the minimal app ----------------------------------------------------------------------------


def minimal_app(db_path: str) -> Any:
    """``POST /online`` with ``{"entities": [{"entity_id": 1}]}``: one primary-key read per
    entity in the plain table, TTL enforced; features by name."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    db = sqlite3.connect(db_path, check_same_thread=False)
    sql = f"SELECT {', '.join(FEATURES)} FROM latest WHERE entity_id = ? AND event_ts >= ?"

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def online(request: Request) -> Response:
        body = await request.json()
        oldest = time.time_ns() // 1000 - TTL_US
        columns: dict[str, list[Any]] = {name: [] for name in FEATURES}
        for entity in body["entities"]:
            row = db.execute(sql, (int(entity["entity_id"]), oldest)).fetchone()
            for name, value in zip(FEATURES, row or [None] * len(FEATURES), strict=True):
                columns[name].append(value)
        return JSONResponse({"features": columns})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/online", online, methods=["POST"]),
        ]
    )


def main() -> None:
    if sys.argv[1] == "load":
        config = json.loads(Path(sys.argv[2]).read_text())
        print(MARKER + json.dumps(run_load(config)), flush=True)
    elif sys.argv[1] == "minimal":
        import uvicorn

        app = minimal_app(sys.argv[2])
        uvicorn.run(
            app, host="127.0.0.1", port=int(sys.argv[3]), access_log=False, log_level="warning"
        )
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")


if __name__ == "__main__":
    main()
