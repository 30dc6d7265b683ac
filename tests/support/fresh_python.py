"""Python code run in a fresh interpreter: what a new process imports is visible only there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_fresh(code: str) -> str:
    """Run ``code`` with ``python -c`` at the repository root; its standard output.

    Raises
    ------
    subprocess.CalledProcessError
        When the code exits with a non-zero status (its stderr is on the error).
    """
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout
