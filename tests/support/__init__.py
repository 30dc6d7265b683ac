"""What every test suite shares to drive the emulator, the service and Redis.

========================= ==================================================================
``emulator``              the test key pair, the start instants, the fast retry policy, the
                          emulator's config and :class:`EmulatorDriver` (the production admin
                          client plus the account reads a test makes with the test keys)
``fixtures``              pytest fixtures: a shared in-thread emulator reset before each test,
                          dedicated emulators on demand (loaded by ``tests/conftest.py``)
``processes``             real processes: the emulator, ``regime-trader run``, private
                          ``redis-server``s, their logs and wake-ups
``faulty_service``        ``regime-trader run`` with a step hook that SIGKILLs it at a chosen
                          step boundary: the crash tests' launcher (production has no such hook)
``alpaca_recorded``       the Alpaca JSON answers recorded from the emulator, and deep copies
                          of them to mutate
``online_engines``        the check that a feature engine restored from JSON state continues
                          with the same bits
``research_spaces``       search-space TOML the research tests share (the conditional
                          drift_margin parameter)
``fresh_python``          code run in a new interpreter at the repository root (what a fresh
                          process imports)
``backtest_cli``          ``regime-trader backtest`` in the test's process, warnings silenced
``captured_cycles``       the cycle hashes captured at 525fdca, read by record/report tests
``macro``                 synthetic true macro series (VIX, spreads) and their CSV file
========================= ==================================================================
"""
