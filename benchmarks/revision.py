"""Run a benchmark worker on the code of another revision, for before/after ratios in one run.

``git archive REV strategies service`` is unpacked under a temporary directory as
``regime_trader/strategies`` and ``regime_trader/service``; a worker started with that directory
first on ``PYTHONPATH`` imports that revision's code instead of the working tree's (the
editable install's finder comes after the path), with the same interpreter and libraries.
Nothing in the repository or its ``.git`` changes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess  # nosec B404 - runs git and this interpreter on our own arguments
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

__all__ = ["ROOT", "revision_code", "run_worker"]


@contextmanager
def revision_code(rev: str) -> Iterator[Path]:
    """A directory to put first on ``PYTHONPATH`` to import ``rev``'s code; removed after."""
    archive = subprocess.run(  # nosec B603 B607 - git on the project's own repository
        ["git", "archive", "--format=tar", rev, "strategies", "service"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix=f"rt-{rev[:12]}-") as tmp:
        package = Path(tmp) / "regime_trader"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(package, filter="data")
        yield Path(tmp)


def run_worker(module: str, args: Sequence[str], code: Path | None = None) -> dict[str, Any]:
    """Run ``python -m module args`` (the working tree's code, or ``code``'s) and parse its JSON.

    The worker prints one JSON object on its last line of output.
    """
    env = dict(os.environ)
    paths = [str(ROOT)] if code is None else [str(code), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(  # nosec B603 - this interpreter, our own module
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
