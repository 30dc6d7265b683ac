"""The mathematics of regime-trader: pure functions and classes, no I/O, no clock, no network.

Nothing in this package imports :mod:`service`; the same objects run in a backtest, a unit
test and the live daily cycle.
"""
