"""``regime-trader profile list|show|promote``: the profiles research writes, and the default.

- ``list``: every profile (shipped and in ``<RT_DATA_DIR>/profiles``), the promoted one marked;
- ``show NAME [--version N]``: one profile's file as written (``default``: the promoted one);
- ``promote NAME [--version N]``: make it the default the live service loads
  (``load_profile("default")``); without ``--version`` the highest.
"""

from __future__ import annotations

import argparse
import sys

from regime_trader.service.profiles import (
    DEFAULT_NAME,
    SHIPPED_DEFAULT,
    ProfileError,
    default_data_dir,
    list_profiles,
    load_profile,
    promote,
    promoted,
)

__all__ = ["add_arguments", "run"]

# The figures `list` shows beside each profile.
_SHOWN = ("dev_sharpe", "validation_sharpe", "validation_erc_sharpe", "pbo", "deflated_sharpe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``list``, ``show`` and ``promote`` on the profile sub-parser."""
    sub = parser.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="every profile, the promoted one marked")
    for name, text in (("show", "print a profile"), ("promote", "make a profile the default")):
        action = sub.add_parser(name, help=text, description=text)
        action.add_argument("name", help=f"profile name ({DEFAULT_NAME!r}: the promoted one)")
        action.add_argument("--version", type=int, help="version (default: the highest)")


def _list() -> int:
    data_dir = default_data_dir()
    current = promoted(data_dir)
    for p in list_profiles(data_dir):
        mark = "*" if current == (p.name, p.version) else " "
        figures = ", ".join(f"{k} {v:.2f}" for k, v in p.figures.items() if k in _SHOWN)
        print(f"{mark} {p.label:<32} {p.strategy_name:<12} {figures or p.description}")
    if current is None:
        print(f"(none promoted: {DEFAULT_NAME!r} is the shipped {SHIPPED_DEFAULT})")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the profile action; returns the process exit code."""
    try:
        if args.profile_command == "list":
            return _list()
        if args.profile_command == "show":
            profile = load_profile(args.name, args.version, data_dir=default_data_dir())
            print(f"# {profile.label} ({profile.path})")
            print(profile.to_toml(), end="")
            return 0
        profile = promote(args.name, args.version, default_data_dir())
        print(f"promoted {profile.label}: the default profile the service loads")
        return 0
    except ProfileError as e:
        print(f"regime-trader profile: {e}", file=sys.stderr)
        return 2
