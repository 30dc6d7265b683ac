"""The runtime of regime-trader: everything that does I/O (broker, data, Redis, HTTP, CLI)."""
