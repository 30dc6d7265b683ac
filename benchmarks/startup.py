"""Start-up time and resident memory of ``regime-trader``, as ratios to ``import numpy``.

Run: ``python -m benchmarks.startup [--repeats 3] [--sessions 5] [--soak-sessions 20]
[--before REV]``.

Every figure is measured in fresh processes of this interpreter, in the same run as the
baseline ``python -c "import numpy"`` (the machine is shared and noisy: the ratio is the figure
to compare); times are the fastest of ``--repeats``:

* ``regime-trader --help`` and ``--version``;
* a cold offline ``regime-trader rebalance``: a fresh ``RT_DATA_DIR`` and no ``REDIS_URL`` or
  Alpaca keys, so it starts the embedded Redis and emulator, trades the first simulated
  session and shuts both down (the whole process, exit included);
* the resident memory (``VmRSS``) of an offline ``regime-trader run`` (embedded emulator in
  the process, a simulated session a second) once it listens and after ``--sessions``
  sessions; and, with ``--soak-sessions``, of ``run`` against an emulator process with a
  longer history (the soak of ``tests/reliability/soak.py``: the regime strategy fits at its
  first cycle, as a service trading at Alpaca does), after its first and last session.

Each command runs as ``python -m regime_trader.service``, which is what the console script
runs. Bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` (warmed by a first untimed
run) whatever ``PYTHONDONTWRITEBYTECODE`` says: an installed package has its ``.pyc`` files.
With ``--before REV`` each figure is also measured on REV's code (:mod:`benchmarks.revision`),
interleaved with the working tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess  # nosec B404 - runs this interpreter on our own modules
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.revision import ROOT, revision_code

SERVICE = (sys.executable, "-m", "regime_trader.service")
RUN_TIMEOUT_SECS = 300.0
# The targets (issue 11), printed next to the figures.
TARGETS = {
    "--help": "<= 0.3 s",
    "--version": "<= 0.3 s",
    "rebalance (cold, offline)": "<= 3 s",
    "run RSS after start": "<= 150 MB",
    "run RSS after sessions": "<= 150 MB, flat",
}


@dataclass(frozen=True)
class Code:
    """The code a figure is measured on: the working tree, or a revision's unpacked copy."""

    label: str
    path: Path | None  # first on PYTHONPATH; None: the working tree

    def env(self, pycache: Path, **extra: str) -> dict[str, str]:
        """A clean environment: none of the service's settings, bytecode cached in ``pycache``."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RT_", "ALPACA_", "REDIS")) and k != "PYTHONDONTWRITEBYTECODE"
        }
        paths = [str(ROOT)] if self.path is None else [str(self.path), str(ROOT)]
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        # One cache per code: a revision's sources must not reuse the tree's bytecode.
        env["PYTHONPYCACHEPREFIX"] = str(pycache / self.label.replace(" ", "_"))
        env.update(extra)
        return env


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)  # nosec B603
    return time.perf_counter() - began


def _numpy_baseline(env: dict[str, str]) -> tuple[float, float]:
    """Wall time of ``python -c "import numpy"`` and its resident memory in MiB."""
    probe = (
        "import numpy\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])"
    )
    began = time.perf_counter()
    done = subprocess.run(  # nosec B603 - this interpreter
        [sys.executable, "-c", probe], env=env, cwd=ROOT, check=True, capture_output=True
    )
    return time.perf_counter() - began, int(done.stdout.split()[-1]) / 1024


def _cold_rebalance(code: Code, pycache: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="rt-startup-") as tmp:
        env = code.env(pycache, RT_DATA_DIR=str(Path(tmp) / "data"))
        return _timed([*SERVICE, "rebalance"], env, Path(tmp))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _killed_after(process: subprocess.Popen[str], secs: float) -> Iterator[None]:
    """Kill ``process`` if it is still running after ``secs`` (a stuck run ends the read)."""
    timer = threading.Timer(secs, process.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _run_rss(code: Code, pycache: Path, sessions: int) -> tuple[float, float]:
    """RSS of an offline ``run`` once it listens and after ``sessions`` cycles are done."""
    with tempfile.TemporaryDirectory(prefix="rt-startup-") as tmp:
        env = code.env(
            pycache,
            RT_DATA_DIR=str(Path(tmp) / "data"),
            RT_HTTP_PORT=str(_free_port()),
            RT_WAKE_INTERVAL_SECS="0.3",
        )
        command = [*SERVICE, "run", "--demo-secs-per-session", "1"]
        process = subprocess.Popen(  # nosec B603 - this interpreter, our own module
            command, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        started = after = float("nan")
        done = 0
        assert process.stderr is not None
        with _killed_after(process, RUN_TIMEOUT_SECS):
            for line in process.stderr:
                if line.startswith("regime-trader running"):
                    started = _rss_mib(process.pid)
                elif '"cycle done"' in line:
                    done += 1
                    if done >= sessions:
                        after = _rss_mib(process.pid)
                        break
        process.terminate()
        process.wait(timeout=60)
        return started, after


def _soak_rss(code: Code, pycache: Path, sessions: int) -> tuple[float, float]:
    """RSS of ``run`` against an emulator process (the soak) after its first and last session."""
    with tempfile.TemporaryDirectory(prefix="rt-startup-") as tmp:
        out = Path(tmp) / "soak.json"
        command = [
            sys.executable,
            "-m",
            "tests.reliability.soak",
            "--sessions",
            str(sessions),
            "--every",
            str(sessions + 1),
            "--json",
            str(out),
        ]
        subprocess.run(  # nosec B603 - this interpreter, the project's own soak
            command, env=code.env(pycache), cwd=ROOT, check=True, capture_output=True
        )
        figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
        return float(figures["rss_mib_first"]), float(figures["rss_mib_end"])


def _measure(
    codes: list[Code], pycache: Path, repeats: int, sessions: int, soak_sessions: int
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The baseline and every figure of every code, interleaved, fastest of ``repeats``."""
    base_env = codes[-1].env(pycache)
    times: dict[str, dict[str, list[float]]] = {c.label: {} for c in codes}
    baseline: list[tuple[float, float]] = []
    help_commands: dict[str, list[str]] = {
        "--help": [*SERVICE, "--help"],
        "--version": [*SERVICE, "--version"],
    }
    for code in codes:  # warm the bytecode caches; untimed
        _timed(help_commands["--help"], code.env(pycache), ROOT)
        _cold_rebalance(code, pycache)
    _numpy_baseline(base_env)
    for _ in range(repeats):
        baseline.append(_numpy_baseline(base_env))
        for code in codes:
            figures = times[code.label]
            for name, command in help_commands.items():
                figures.setdefault(name, []).append(_timed(command, code.env(pycache), ROOT))
            rebalance = _cold_rebalance(code, pycache)
            figures.setdefault("rebalance (cold, offline)", []).append(rebalance)
    result = {c.label: {k: min(v) for k, v in times[c.label].items()} for c in codes}
    for code in codes:
        started, after = _run_rss(code, pycache, sessions)
        result[code.label]["run RSS after start"] = started
        result[code.label]["run RSS after sessions"] = after
        if soak_sessions:
            first, last = _soak_rss(code, pycache, soak_sessions)
            result[code.label]["soak RSS after 1 session"] = first
            result[code.label]["soak RSS after sessions"] = last
    numpy_secs = min(t for t, _ in baseline)
    numpy_mib = min(m for _, m in baseline)
    return {"secs": numpy_secs, "mib": numpy_mib}, result


def _cell(name: str, value: float, baseline: dict[str, float]) -> str:
    if "RSS" in name:
        return f"{value:6.1f} MiB ({value * 2**20 / 1e6:5.1f} MB, {value / baseline['mib']:4.1f}x)"
    return f"{value:6.2f} s ({value / baseline['secs']:5.1f}x)"


def _label(name: str, sessions: int, soak_sessions: int) -> str:
    if name == "run RSS after sessions":
        return f"run RSS after {sessions} sessions"
    if name == "soak RSS after sessions":
        return f"soak RSS after {soak_sessions} sessions"
    return name


def report(
    baseline: dict[str, float],
    result: dict[str, dict[str, float]],
    sessions: int,
    soak_sessions: int,
) -> str:
    """The table: one row per figure, one column per code, ratios to the numpy baseline."""
    labels = list(result)
    lines = [
        f'baseline python -c "import numpy": {baseline["secs"]:.3f} s, {baseline["mib"]:.1f} MiB '
        "(ratios in parentheses are to these)",
        "",
        f"{'figure':<30} {'target':<16} " + " ".join(f"{lab:<34}" for lab in labels),
    ]
    for name in result[labels[-1]]:
        cells = " ".join(f"{_cell(name, result[lab][name], baseline):<34}" for lab in labels)
        target = TARGETS.get(name, "")
        lines.append(f"{_label(name, sessions, soak_sessions):<30} {target:<16} {cells}")
    if len(labels) == 2:
        lines.append("")
        before, after = (result[lab] for lab in labels)
        for name in after:
            ratio = before[name] / after[name]
            lines.append(f"{_label(name, sessions, soak_sessions):<30} before/after {ratio:5.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per figure")
    parser.add_argument("--sessions", type=int, default=5, help="offline run: sessions")
    parser.add_argument(
        "--soak-sessions", type=int, default=20, help="run against an emulator process (0: skip)"
    )
    parser.add_argument("--before", metavar="REV", help="also measure REV's code")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        codes = [Code("working tree", None)]
        if args.before:
            codes.insert(
                0, Code(f"before {args.before}", stack.enter_context(revision_code(args.before)))
            )
        pycache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rt-pyc-")))
        baseline, result = _measure(codes, pycache, args.repeats, args.sessions, args.soak_sessions)
    print(report(baseline, result, args.sessions, args.soak_sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
