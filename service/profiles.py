"""Strategy profiles: named, versioned parameter sets ("tune -> validate -> promote").

A profile is one TOML file::

    name = "regime-erc-3asset"           # 1-64 of a-z 0-9 - _ ; "default" is reserved
    version = 2                          # >= 1; a (name, version) is written once, never changed
    strategy = "regime_erc"              # a name of regime_trader.strategies.registry.STRATEGIES
    description = "..."
    created = "2025-01-01T00:00:00+00:00"

    [params]                             # the strategy overrides, nested as strategy_params
    policy = { target_vol = 0.1 }

    [source]                             # where it came from
    study = "..."                        # the research study that chose it (optional)
    data_file = "..."
    data_sha256 = "..."
    symbols = ["SPXTR", "TLT", "GLD"]    # the universe it was chosen on (required)
    dev_start = "2006-01-01"             # the windows (optional strings)
    dev_end = "2014-12-31"
    validation_start = "2015-01-02"
    validation_end = "2019-12-31"

    [figures]                            # headline numbers (finite floats), e.g. dev_sharpe

Where profiles live:

- shipped with the package: ``regime_trader/service/profiles_data/<name>.toml`` (package
  data), one version each;
- written by ``regime-trader research`` and kept by the user:
  ``<RT_DATA_DIR>/profiles/<name>/v<version>.toml`` (``RT_DATA_DIR`` defaults to
  ``~/.regime-trader``);
- the promoted one: ``<RT_DATA_DIR>/profiles/promoted.toml`` names a (name, version).

``load_profile("default")`` is the promoted profile, or the shipped :data:`SHIPPED_DEFAULT`
when none is promoted: what the live service runs unless a portfolio names another profile.
``load_profile(name)`` without a version is that name's highest version. Every file is
validated on load (:class:`ProfileError` names the file and the field); its parameters are
built once with :func:`~regime_trader.strategies.registry.build_strategy` on its universe, so
a profile the strategy would refuse never loads.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tomli_w

from regime_trader.strategies.base import Strategy
from regime_trader.strategies.registry import STRATEGIES, build_strategy

__all__ = [
    "DEFAULT_NAME",
    "SHIPPED_DEFAULT",
    "Profile",
    "ProfileError",
    "ProfileSource",
    "default_data_dir",
    "list_profiles",
    "load_profile",
    "merged_params",
    "next_version",
    "parse_profile",
    "promote",
    "promoted",
    "write_profile",
]

DEFAULT_NAME = "default"
# What the research protocol left as the default (docs/research/*.md, README "Results"): the
# chosen regime profiles did not beat static ERC and its vol-matched twin on both validation
# windows, so the default is the simplest strategy that is not beaten by them: static ERC.
SHIPPED_DEFAULT = "static-erc"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TOP = {"name", "version", "strategy", "description", "created", "params", "source", "figures"}
_SOURCE_TEXT = (
    "study",
    "data_file",
    "data_sha256",
    "dev_start",
    "dev_end",
    "validation_start",
    "validation_end",
)


class ProfileError(ValueError):
    """A profile cannot be used; the message names the file (or profile) and the field."""


def default_data_dir() -> Path:
    """``RT_DATA_DIR``, or ``~/.regime-trader`` (as the service's settings)."""
    return Path(os.environ.get("RT_DATA_DIR") or "~/.regime-trader").expanduser()


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class ProfileSource:
    """Where a profile came from: the study, its data and windows."""

    symbols: tuple[str, ...]
    study: str | None = None
    data_file: str | None = None
    data_sha256: str | None = None
    dev_start: str | None = None
    dev_end: str | None = None
    validation_start: str | None = None
    validation_end: str | None = None


@dataclass(frozen=True)
class Profile:
    """A named, versioned strategy configuration.

    Attributes
    ----------
    params : mapping
        Read-only strategy overrides (nested), as a portfolio's ``strategy_params``.
    path : Path or None
        The file it was read from (None for one not yet written).
    """

    name: str
    version: int
    strategy_name: str
    params: Mapping[str, Any]
    source: ProfileSource
    figures: Mapping[str, float] = field(default_factory=dict)
    description: str = ""
    created: str = ""
    path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen(self.params))
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))

    @property
    def label(self) -> str:
        """``name v<version>``, as alerts and /status show it."""
        return f"{self.name} v{self.version}"

    def overrides(self) -> dict[str, Any]:
        """The parameters as a plain nested dict (a portfolio's ``strategy_params``)."""
        thawed: dict[str, Any] = _thawed(self.params)
        return thawed

    def overridden(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """This profile's parameters with ``overrides`` on top, nested tables merged key by key."""
        return merged_params(self.overrides(), overrides)

    def build(self, symbols: Sequence[str]) -> Strategy:
        """A fresh strategy of this profile on ``symbols``."""
        return build_strategy(self.strategy_name, symbols, self.overrides())

    def to_toml(self) -> str:
        source = {k: v for k, v in vars(self.source).items() if v is not None}
        source["symbols"] = list(self.source.symbols)
        document: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "strategy": self.strategy_name,
            "description": self.description,
            "created": self.created,
            "params": _thawed(self.params),
            "source": source,
            "figures": dict(self.figures),
        }
        return tomli_w.dumps(document)


def merged_params(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top, nested tables merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(merged.get(key), dict) and isinstance(value, Mapping):
            merged[key] = merged_params(merged[key], value)
        else:
            merged[key] = _thawed(value)
    return merged


def _fail(where: str, field_name: str, problem: str, value: Any) -> ProfileError:
    return ProfileError(f"{where}: field {field_name!r}: {problem} (got {value!r})")


def _text(where: str, table: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(where, prefix + key, "must be a string", value)
    return value


def _source(where: str, raw: Any) -> ProfileSource:
    if not isinstance(raw, dict):
        raise _fail(where, "source", "must be a table", raw)
    unknown = sorted(set(raw) - {*_SOURCE_TEXT, "symbols"})
    if unknown:
        raise _fail(where, "source", f"unknown keys {unknown}", raw)
    symbols = raw.get("symbols")
    if (
        not isinstance(symbols, list)
        or not symbols
        or not all(isinstance(s, str) and s for s in symbols)
    ):
        raise _fail(where, "source.symbols", "must be a non-empty list of symbols", symbols)
    texts = {key: _text(where, raw, key, "source.") for key in _SOURCE_TEXT}
    return ProfileSource(symbols=tuple(symbols), **texts)


def _figures(where: str, raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise _fail(where, "figures", "must be a table", raw)
    out = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, f"figures.{key}", "must be a number", value)
        if not math.isfinite(value):
            raise _fail(where, f"figures.{key}", "must be finite", value)
        out[key] = float(value)
    return out


def parse_profile(text: str, where: str = "<profile>", path: Path | None = None) -> Profile:
    """Read and validate a profile.

    Raises
    ------
    ProfileError
        Naming ``where`` and the field: invalid TOML, an unknown or missing field, a value of
        the wrong type, an unknown strategy, or parameters the strategy refuses.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"{where}: not valid TOML ({e})") from e
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise ProfileError(f"{where}: unknown fields {unknown}; expected {sorted(_TOP)}")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name == DEFAULT_NAME:
        raise _fail(where, "name", "must be 1-64 of a-z 0-9 - _ and not 'default'", name)
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(where, "version", "must be an integer >= 1", version)
    strategy = data.get("strategy")
    if strategy not in STRATEGIES:
        raise _fail(where, "strategy", f"must be one of {sorted(STRATEGIES)}", strategy)
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise _fail(where, "params", "must be a table", params)
    source = _source(where, data.get("source"))
    profile = Profile(
        name=name,
        version=version,
        strategy_name=str(strategy),
        params=params,
        source=source,
        figures=_figures(where, data.get("figures", {})),
        description=_text(where, data, "description") or "",
        created=_text(where, data, "created") or "",
        path=path,
    )
    try:
        profile.build(source.symbols)
    except (TypeError, ValueError, KeyError) as e:
        raise ProfileError(f"{where}: field 'params': refused by {strategy!r}: {e}") from e
    return profile


def _read(path: Path) -> Profile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(f"{path}: cannot read the profile ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ProfileError(f"{path}: not UTF-8 text (byte {e.start})") from e
    return parse_profile(text, str(path), path)


def _shipped_dir() -> Path:
    return Path(str(resources.files("regime_trader.service") / "profiles_data"))


def _user_dir(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()) / "profiles"


def _checked(profile: Profile, path: Path, name: str | None, version: int | None) -> Profile:
    expected = (name or profile.name, version or profile.version)
    if (profile.name, profile.version) != expected:
        raise ProfileError(
            f"{path}: field 'name'/'version': {profile.label} in a file that should hold "
            f"{expected[0]} v{expected[1]}"
        )
    return profile


def list_profiles(data_dir: Path | None = None) -> list[Profile]:
    """Every profile, shipped and user, sorted by name then version.

    Raises
    ------
    ProfileError
        For an invalid file, or a (name, version) held by two files with different contents.
    """
    found: dict[tuple[str, int], Profile] = {}
    shipped = sorted(_shipped_dir().glob("*.toml"))
    user = sorted(_user_dir(data_dir).glob("*/v*.toml"))
    for path in shipped + user:
        profile = _read(path)
        if path in user:
            number = path.stem[1:]
            _checked(profile, path, path.parent.name, int(number) if number.isdigit() else -1)
        else:
            _checked(profile, path, path.stem, None)
        key = (profile.name, profile.version)
        if key in found and found[key] != profile:
            raise ProfileError(
                f"{path}: {profile.label} differs from {found[key].path}: a version is never "
                "rewritten, write a new version"
            )
        found.setdefault(key, profile)
    return [found[k] for k in sorted(found)]


def promoted(data_dir: Path | None = None) -> tuple[str, int] | None:
    """The promoted (name, version), or None.

    Raises
    ------
    ProfileError
        If the pointer file is invalid.
    """
    path = _user_dir(data_dir) / "promoted.toml"
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProfileError(f"{path}: cannot read the promoted profile ({e})") from e
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or isinstance(version, bool) or not isinstance(version, int):
        raise ProfileError(f"{path}: field 'name'/'version': got {name!r}, {version!r}")
    return name, version


def load_profile(name: str, version: int | None = None, *, data_dir: Path | None = None) -> Profile:
    """The profile ``name`` (its highest version unless ``version`` is given).

    ``name = "default"`` is the promoted profile, or the shipped :data:`SHIPPED_DEFAULT`.

    Raises
    ------
    ProfileError
        If no such profile exists (the known ones are listed) or its file is invalid.
    """
    if name == DEFAULT_NAME:
        pointer = promoted(data_dir)
        if pointer is None:
            return load_profile(SHIPPED_DEFAULT, data_dir=data_dir)
        return load_profile(pointer[0], pointer[1], data_dir=data_dir)
    every = list_profiles(data_dir)
    matching = [p for p in every if p.name == name and version in (None, p.version)]
    if not matching:
        known = sorted({p.label for p in every})
        wanted = name if version is None else f"{name} v{version}"
        raise ProfileError(f"no profile {wanted}; known: {known}")
    return matching[-1]


def next_version(name: str, data_dir: Path | None = None) -> int:
    """One more than the highest version of ``name`` (1 for a new name)."""
    versions = [p.version for p in list_profiles(data_dir) if p.name == name]
    return max(versions, default=0) + 1


def write_profile(profile: Profile, data_dir: Path | None = None) -> Path:
    """Write a new profile version into the user directory and return its path.

    Raises
    ------
    ProfileError
        If that (name, version) exists already (versions are never rewritten) or the profile
        does not validate once written.
    """
    existing = [
        p for p in list_profiles(data_dir) if (p.name, p.version) == (profile.name, profile.version)
    ]
    if existing:
        raise ProfileError(f"{profile.label} exists already at {existing[0].path}")
    path = _user_dir(data_dir) / profile.name / f"v{profile.version}.toml"
    text = profile.to_toml()
    parse_profile(text, str(path))  # what is written must load
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
    return path


def promote(name: str, version: int | None = None, data_dir: Path | None = None) -> Profile:
    """Make a profile the default the live service loads (``load_profile("default")``).

    Raises
    ------
    ProfileError
        If the profile does not exist or is invalid.
    """
    profile = load_profile(name, version, data_dir=data_dir)
    path = _user_dir(data_dir) / "promoted.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        tomli_w.dumps(
            {
                "name": profile.name,
                "version": profile.version,
                "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        ),
        encoding="utf-8",
    )
    temporary.replace(path)
    return profile
