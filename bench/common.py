"""What every benchmark shares: the processes it starts (and always stops), a scratch database on
the embedded server, CPU use per process, progress lines, and the report (table, JSON, chart)."""

import asyncio
import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pgserver
import psutil
import psycopg

from afterhours import migrations

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POSTGRES_DIR = ROOT / "var" / "bench-postgres"
NODE_DIR = ROOT / "bench" / "node_relay"
QUICK = False  # `python -m bench --quick`: small sizes, a fast look (set by bench.__main__)
SATURATED = 85.0  # % of one core over a phase that counts as "this process was the limit"
_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {message}", flush=True)


# --- processes ------------------------------------------------------------------------------

_started: list[subprocess.Popen[Any]] = []


def _child_setup() -> None:
    # Each child leads its own process group (Ctrl-C reaches only us; we stop the group), dies
    # with us even if we are killed outright, and may open as many files as the hard limit allows.
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(
    args: Sequence[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.DEVNULL,
) -> subprocess.Popen[Any]:
    """Start a process that `stop_all` (run on every exit of `python -m bench`) will stop."""
    proc = subprocess.Popen(
        list(args),
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        preexec_fn=_child_setup,
        text=True,
    )
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL if it has not gone after `timeout`."""
    if proc in _started:
        _started.remove(proc)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def stop_all() -> None:
    for proc in reversed(list(_started)):
        stop(proc, timeout=10.0)


def raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the embedded database ------------------------------------------------------------------

_we_started_postgres = False


def admin_uri() -> str:
    global _we_started_postgres
    POSTGRES_DIR.parent.mkdir(exist_ok=True)
    if not (POSTGRES_DIR / "postmaster.pid").exists():
        _we_started_postgres = True
    return str(pgserver.get_server(POSTGRES_DIR, cleanup_mode=None).get_uri())


def stop_postgres_if_ours() -> None:
    """Stop the embedded server at the end if this run started it (else someone else uses it)."""
    pid_file = POSTGRES_DIR / "postmaster.pid"
    if not _we_started_postgres or not pid_file.exists():
        return
    try:
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(30)
    except (psutil.NoSuchProcess, psutil.TimeoutExpired, ValueError):
        pass


def postgres_pid() -> int | None:
    try:
        return int((POSTGRES_DIR / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def scratch_database(label: str) -> Iterator[str]:
    """A fresh, migrated database on the embedded server under var/bench-postgres, dropped on
    the way out (also on Ctrl-C and SIGTERM)."""
    admin = admin_uri()
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.replace("/postgres?", f"/{name}?")
    try:
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_http(url: str, path: str, proc: subprocess.Popen[Any]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if (await client.get(url + path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not come up")


@dataclass
class Served:
    base: str
    proc: subprocess.Popen[Any]


@contextmanager
def afterhours_serve(
    url: str,
    secret: str,
    ready: str,
    *,
    worker: bool = True,
    redis_url: str | None = None,
    **settings: str,
) -> Iterator[Served]:
    """`afterhours serve` (worker in-process unless `worker=False`) on the database at `url` and
    a scratch data dir, with AFTERHOURS_<name> `settings`, once `ready` answers below 500."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "AFTERHOURS_JWT_SECRET": secret,
        "AFTERHOURS_DATA_DIR": str(data_dir),
        **{f"AFTERHOURS_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    command = [sys.executable, "-m", "afterhours", "serve", "--port", str(port)]
    proc = spawn(command + ([] if worker else ["--no-worker"]), env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_http(base, ready, proc))
        yield Served(base, proc)
    finally:
        stop(proc, timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def node() -> str | None:
    """The node binary, with bench/node_relay's packages installed; None without node/npm."""
    node_bin, npm = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm is None:
        return None
    if not (NODE_DIR / "node_modules" / "socket.io-client").exists():
        progress("npm install (bench/node_relay) …")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True)
    return node_bin


@contextmanager
def relay(chats: dict[str, list[str]]) -> Iterator[Served]:
    """The bare Node socket.io relay (bench/node_relay/relay.js) for `chats` {match: [a, b]}."""
    node_bin = node()
    assert node_bin is not None
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(chats, f)
    proc = spawn([node_bin, "relay.js", str(port), f.name], cwd=NODE_DIR)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_http(base, "/socket.io/?EIO=4&transport=polling", proc))
        yield Served(base, proc)
    finally:
        stop(proc)
        os.unlink(f.name)


class Generator:
    """One bench/node_relay/loadgen.js process: a spec in, JSON lines out, commands in."""

    def __init__(self, spec: dict[str, Any]) -> None:
        node_bin = node()
        assert node_bin is not None
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        self._spec = f.name
        self.proc = spawn(
            [node_bin, "loadgen.js", f.name],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def read(self, expected: str) -> dict[str, Any]:
        """The next line the generator prints, which must be the `expected` event."""
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        line = out.readline()
        if not line:
            raise RuntimeError(f"load generator exited ({self.proc.wait()}) before {expected!r}")
        data: dict[str, Any] = json.loads(line)
        if data["event"] != expected:
            raise RuntimeError(f"load generator: {data}")
        return data

    def command(self, name: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(name + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        stop(self.proc)
        os.unlink(self._spec)


@contextmanager
def generators(specs: list[dict[str, Any]]) -> Iterator[list[Generator]]:
    started: list[Generator] = []
    try:
        for spec in specs:
            started.append(Generator(spec))
        yield started
    finally:
        for g in started:
            g.close()


# --- CPU --------------------------------------------------------------------------------------


def _cpu_seconds(pids: Sequence[int], with_children: bool) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs = [proc] + (proc.children(recursive=True) if with_children else [])
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
    return total


class Cpu:
    """CPU of named processes over a phase, as % of one core (`with Cpu(...) as cpu:`).
    "postgres" is the embedded server and all its backends; the machine's total is kept too, so
    a reader sees whether something else was using the cores."""

    def __init__(self, **named: int | Sequence[int]) -> None:
        self.named = {k: [v] if isinstance(v, int) else list(v) for k, v in named.items()}
        pg = postgres_pid()
        if pg is not None:
            self.named["postgres"] = [pg]
        self.percent: dict[str, float] = {}
        self.machine = 0.0

    def _read(self) -> dict[str, float]:
        return {k: _cpu_seconds(v, k == "postgres") for k, v in self.named.items()}

    def __enter__(self) -> "Cpu":
        self._t0 = time.perf_counter()
        self._start = self._read()
        self._machine0 = psutil.cpu_times()
        return self

    def __exit__(self, *_: object) -> None:
        wall = max(time.perf_counter() - self._t0, 1e-6)
        end = self._read()
        self.percent = {k: 100 * (end[k] - self._start[k]) / wall for k in end}
        m1 = psutil.cpu_times()
        busy = sum(getattr(m1, f) - getattr(self._machine0, f) for f in ("user", "system", "nice"))
        self.machine = 100 * busy / wall

    def saturated(self) -> str:
        """Which processes ran at about a full core, e.g. "ours" or "none"."""
        hot = [k for k, v in self.percent.items() if v >= SATURATED]
        return ", ".join(hot) or "none"

    def summary(self) -> str:
        parts = [f"{k} {v:.0f}%" for k, v in self.percent.items()]
        return "CPU " + ", ".join(parts) + f"; machine {self.machine:.0f}% of {os.cpu_count()}00%"


def merge_cpu(*runs: tuple[str, Cpu | None]) -> tuple[str, str]:
    """(saturated, summary) over labelled runs, e.g. [("ours", a), ("relay", b)]:
    "ours: ours; relay: generator" says which process was the limit in each."""
    found = [(label, c) for label, c in runs if c is not None]
    saturated = "; ".join(f"{label}: {c.saturated()}" for label, c in found)
    return saturated, "; ".join(f"{label} run {c.summary()}" for label, c in found)


@dataclass
class Row:
    benchmark: str
    case: str
    metric: str
    ours: float
    baseline: float | None
    unit: str
    note: str = ""
    saturated: str = ""  # the processes at ~100 % of a core while it was measured, or "none"
    target: str = ""  # e.g. "≤ 30": the bound `ours` is held to, in `unit`
    met: bool | None = None

    @property
    def ratio(self) -> str:
        if self.baseline is None or not self.baseline:
            return ""
        return f"{self.ours / self.baseline:.2f}"


def figure(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: object, **kwargs: object) -> None:
        self.rows.append(Row(*args, **kwargs))  # type: ignore[arg-type]
        progress("  " + self._line(self.rows[-1]))

    def check(self, row_target: str, met: bool) -> None:
        """Hold the row just added to a target."""
        self.rows[-1].target, self.rows[-1].met = row_target, met

    @staticmethod
    def _line(r: Row) -> str:
        base = f" (baseline {figure(r.baseline)})" if r.baseline is not None else ""
        return f"{r.benchmark} / {r.case} / {r.metric}: {figure(r.ours)} {r.unit}{base}"

    def table(self) -> str:
        head = (
            "benchmark",
            "case",
            "metric",
            "ours",
            "baseline",
            "unit",
            "ours/baseline",
            "saturated",
            "target",
            "note",
        )
        body = [
            (
                r.benchmark,
                r.case,
                r.metric,
                figure(r.ours),
                figure(r.baseline),
                r.unit,
                r.ratio,
                r.saturated,
                "" if r.met is None else f"{r.target} {'pass' if r.met else 'FAIL'}",
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]

        def line(cells: tuple[object, ...]) -> str:
            padded = (str(c).ljust(w) for c, w in zip(cells, widths, strict=True))
            return "| " + " | ".join(padded) + " |"

        sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        return "\n".join([line(head), sep, *(line(b) for b in body)])

    def save(self, stamp: str | None = None) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        meta = {
            "when": stamp,
            "machine": platform.platform(),
            "python": platform.python_version(),
            "cores": os.cpu_count(),
            "quick": QUICK,
            "load_average": list(os.getloadavg()),
        }
        data = {"meta": meta, "rows": [r.__dict__ for r in self.rows]}
        path = RESULTS / f"{stamp}.json"
        path.write_text(json.dumps(data, indent=2))
        (RESULTS / "latest.md").write_text(
            f"# Benchmark results {stamp}\n\n{meta['machine']}, Python {meta['python']},"
            f" {meta['cores']} cores{', --quick' if QUICK else ''}\n\n" + self.table() + "\n"
        )
        self.chart(RESULTS / f"{stamp}.png")
        return path

    def chart(self, path: Path) -> None:
        """Every row with a baseline or a target: ours against it, as a ratio on a log scale
        (1 = equal); green where the row meets its target, red where not, grey without one."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [r for r in self.rows if r.baseline or r.met is not None]
        if not rows:
            return
        labels, ratios, colours, texts = [], [], [], []
        for r in rows:
            against = r.baseline if r.baseline else _target_value(r.target)
            if not against:
                continue
            what = "baseline" if r.baseline else "target"
            labels.append(f"{r.benchmark}: {r.case}\n{r.metric} (vs {what})")
            ratios.append(max(r.ours / against, 1e-3))
            colours.append("#9e9e9e" if r.met is None else ("#2e7d32" if r.met else "#c62828"))
            texts.append(f"{figure(r.ours)} / {figure(against)} {r.unit}")
        fig, ax = plt.subplots(figsize=(11, 0.55 * len(labels) + 1.5))
        y = range(len(labels))
        ax.barh(list(y), ratios, color=colours)
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        for k, (ratio, text) in enumerate(zip(ratios, texts, strict=True)):
            ax.text(ratio, k, " " + text, va="center", fontsize=7)
        ax.set_xlabel("ours / baseline (or target), log scale")
        ax.set_title(f"After Hours benchmarks, {path.stem}{' (quick)' if QUICK else ''}")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _target_value(target: str) -> float | None:
    digits = "".join(c for c in target if c.isdigit() or c == ".")
    try:
        return float(digits)
    except ValueError:
        return None


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]
