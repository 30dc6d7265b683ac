"""Record the Redis state and the emulator state file the previous version writes offline.

Run once, from the repository root, with the previous version (commit 841cfcc, the last before
the ``regime_trader`` namespace) installed in its own virtualenv::

    git worktree add /tmp/rt-prev 841cfcc
    python -m venv /tmp/rt-prev-venv && /tmp/rt-prev-venv/bin/pip install /tmp/rt-prev
    python -m tests.integration.service.record_state_841cfcc /tmp/rt-prev-venv/bin/regime-trader

On a private ``redis-server`` and a fresh data directory (the embedded emulator, synthetic
market, default portfolio, regime strategy) it runs ``rebalance`` six times (six simulated
sessions: a first buy-in, then rebalances or no-trades), ``halt``, and one more ``rebalance``,
which the halt refuses. Every key is then written to ``state_841cfcc/redis.json``
(:mod:`tests.support.redis_dump`) and the emulator's state file to
``state_841cfcc/emulator.json``; ``test_state_migration.py`` reads them with today's code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import RedisServer, clean_env
from tests.support.redis_dump import dump_keys

OUT = Path(__file__).with_name("state_841cfcc")
SESSIONS = 6
HALT_REASON = "migration fixture: operator halt"


def record(command: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", persistent=False).start()
        try:
            env = clean_env() | {"REDIS_URL": server.url, "RT_DATA_DIR": f"{tmp}/data"}
            steps = [["rebalance"]] * SESSIONS + [["halt", "--reason", HALT_REASON], ["rebalance"]]
            for args in steps:
                done = subprocess.run(
                    [command, *args], env=env, cwd=tmp, capture_output=True, text=True, check=False
                )
                print(f"$ regime-trader {' '.join(args)}  (exit {done.returncode})")
                print(done.stdout.strip())
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-2000:])
            with server.client() as client:
                keys = dump_keys(client)
        finally:
            server.stop()
        OUT.mkdir(exist_ok=True)
        (OUT / "redis.json").write_text(json.dumps(keys, indent=1) + "\n", encoding="utf-8")
        shutil.copyfile(Path(tmp) / "data" / "emulator.json", OUT / "emulator.json")


if __name__ == "__main__":
    record(sys.argv[1])
