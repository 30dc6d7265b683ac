"""The declared search space of a research study: which strategy parameters a study varies, how.

A space is one TOML file (the shipped one is ``research_spaces/regime_erc.toml`` in this
package)::

    strategy = "regime_erc"          # a name of regime_trader.strategies.registry.STRATEGIES

    [fixed]                          # overrides every trial gets (nested as strategy_params)
    regime = { n_init = 2 }

    [[parameter]]
    path = "policy.target_vol"       # dotted path into the strategy's parameters
    float = { low = 0.04, high = 0.2, log = true }

    [[parameter]]
    path = "regime.n_states"
    int = { low = 2, high = 3 }      # step = 1, log = false by default

    [[parameter]]
    path = "hmm_features"
    choice = { returns = ["*_ret"], returns_corr = ["*_ret", "corr"] }   # label = value

    [[parameter]]
    path = "jump.jump_penalty"       # only sampled when the condition holds
    float = { low = 1.0, high = 100.0, log = true }
    when = { path = "engine", in = ["jump", "sparse_jump"] }

``choice`` is a list of scalars or a table of labels to values (any TOML value, lists become
tuples). ``when`` names an earlier ``choice`` parameter and the labels for which this one is
sampled; otherwise the parameter keeps the strategy's default. Every declared parameter is
checked against the strategy before any trial runs (:meth:`SearchSpace.check`): one the
strategy does not have, or a bound it refuses, stops the study with :class:`SearchSpaceError`
naming the file, the path and the value. Nothing declared is ever dropped silently.

Optuna is not imported here: :meth:`SearchSpace.suggest` takes anything with Optuna's
``suggest_float`` / ``suggest_int`` / ``suggest_categorical`` methods.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from regime_trader.strategies.registry import STRATEGIES, build_strategy

__all__ = [
    "Choice",
    "Condition",
    "FloatRange",
    "IntRange",
    "Parameter",
    "SearchSpace",
    "SearchSpaceError",
    "Suggester",
    "default_space_path",
    "load_space",
    "parse_space",
]

DEFAULT_SPACE = "regime_erc.toml"


class SearchSpaceError(ValueError):
    """The search space cannot be used; the message names the file, the parameter and why."""


class Suggester(Protocol):
    """The part of ``optuna.Trial`` a space needs."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class FloatRange:
    """A float in ``[low, high]``, log-uniform when ``log``."""

    low: float
    high: float
    log: bool = False

    def candidates(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def suggest(self, trial: Suggester, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def value(self, sampled: Any) -> Any:
        return float(sampled)


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` by ``step``, log-uniform when ``log``."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def candidates(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def suggest(self, trial: Suggester, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def value(self, sampled: Any) -> Any:
        return int(sampled)


@dataclass(frozen=True)
class Choice:
    """One of several labelled values; Optuna samples the label."""

    options: tuple[tuple[str, Any], ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.options)

    def candidates(self) -> tuple[Any, ...]:
        return tuple(value for _, value in self.options)

    def suggest(self, trial: Suggester, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.labels))

    def value(self, sampled: Any) -> Any:
        return copy.deepcopy(dict(self.options)[str(sampled)])


Distribution = FloatRange | IntRange | Choice


@dataclass(frozen=True)
class Condition:
    """Sample a parameter only when the choice at ``path`` took one of ``labels``."""

    path: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Parameter:
    """One declared parameter: a dotted path into the strategy parameters and its distribution."""

    path: str
    distribution: Distribution
    when: Condition | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A strategy and the parameters a study varies.

    Attributes
    ----------
    parameters : tuple of Parameter
        In declaration order (conditions refer to earlier ones).
    fixed : mapping
        Overrides every trial gets, nested as a portfolio's ``strategy_params``.
    source : str
        Where the declaration came from (for messages and the report).
    text : str
        The declaration as written (stored with the study).
    """

    strategy: str
    parameters: tuple[Parameter, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<string>"
    text: str = ""

    def suggest(self, trial: Suggester) -> dict[str, Any]:
        """Sample one trial's parameters; returns the strategy overrides (nested)."""
        sampled: dict[str, Any] = {}
        for p in self.parameters:
            if p.when is not None and sampled.get(p.when.path) not in p.when.labels:
                continue
            sampled[p.path] = p.distribution.suggest(trial, p.path)
        return self.overrides(sampled)

    def overrides(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """The nested strategy overrides of sampled values (Optuna's ``trial.params``).

        Raises
        ------
        SearchSpaceError
            If ``sampled`` names a path the space does not declare.
        """
        by_path = {p.path: p for p in self.parameters}
        unknown = sorted(set(sampled) - set(by_path))
        if unknown:
            raise SearchSpaceError(f"{self.source}: sampled parameters {unknown} not declared")
        out = copy.deepcopy(dict(self.fixed))
        for path, raw in sampled.items():
            _set_path(out, path, by_path[path].distribution.value(raw))
        return out

    def check(self, symbols: Sequence[str]) -> None:
        """Build the strategy at every bound and option of every parameter.

        Each parameter is tried alone (with its condition's first label set), so a parameter
        the strategy lacks, or a bound it refuses, is named on its own.

        Raises
        ------
        SearchSpaceError
            Naming the file, the parameter path, the value and the strategy's message.
        """
        by_path = {p.path: p for p in self.parameters}
        _build(self, self.overrides({}), symbols, "the fixed overrides")
        for p in self.parameters:
            base: dict[str, Any] = {}
            if p.when is not None:
                base[p.when.path] = p.when.labels[0]
            for candidate in p.distribution.candidates():
                overrides = self.overrides(
                    {k: v for k, v in base.items() if k in by_path and k != p.path}
                )
                _set_path(overrides, p.path, candidate)
                _build(self, overrides, symbols, f"parameter {p.path!r} = {candidate!r}")


def _build(
    space: SearchSpace, overrides: dict[str, Any], symbols: Sequence[str], what: str
) -> None:
    try:
        build_strategy(space.strategy, symbols, overrides)
    except (TypeError, ValueError, KeyError) as e:
        raise SearchSpaceError(
            f"{space.source}: {what} is refused by strategy {space.strategy!r}: {e}"
        ) from e


def _set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise SearchSpaceError(f"parameter path {path!r}: {key!r} is not a table")
        node = child
    node[leaf] = value


def _tuples(value: Any) -> Any:
    """TOML arrays to tuples, recursively (strategy parameters take tuples)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _number(where: str, table: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in table:
        raise SearchSpaceError(f"{where}: missing {key!r}")
    value = table[key]
    ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
    if not ok or isinstance(value, bool):
        raise SearchSpaceError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")
    return kind(value)


def _distribution(where: str, entry: Mapping[str, Any]) -> Distribution:
    kinds = [k for k in ("float", "int", "choice") if k in entry]
    if len(kinds) != 1:
        raise SearchSpaceError(f"{where}: give exactly one of float, int, choice; got {kinds}")
    kind = kinds[0]
    spec = entry[kind]
    if kind == "choice":
        if isinstance(spec, list) and spec:
            bad = [v for v in spec if not isinstance(v, str | int | float | bool)]
            if bad:
                raise SearchSpaceError(f"{where}: a choice list takes scalars, got {bad[0]!r}")
            options = tuple((str(v), v) for v in spec)
        elif isinstance(spec, dict) and spec:
            options = tuple((str(k), _tuples(v)) for k, v in spec.items())
        else:
            raise SearchSpaceError(f"{where}: choice must be a non-empty list or table")
        if len({label for label, _ in options}) != len(options):
            raise SearchSpaceError(f"{where}: choice labels repeat: {[o[0] for o in options]}")
        return Choice(options)
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where}: {kind} must be a table like {{ low = 1, high = 2 }}")
    unknown = sorted(set(spec) - {"low", "high", "log", "step"})
    if unknown or (kind == "float" and "step" in spec):
        raise SearchSpaceError(f"{where}: unknown {kind} keys {unknown or ['step']}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{where}: 'log' must be true or false, got {log!r}")
    number = float if kind == "float" else int
    low = _number(where, spec, "low", number)
    high = _number(where, spec, "high", number)
    if not low < high:
        raise SearchSpaceError(f"{where}: need low < high, got {low} and {high}")
    if log and low <= 0:
        raise SearchSpaceError(f"{where}: a log range needs low > 0, got {low}")
    if kind == "float":
        return FloatRange(low, high, log)
    step = _number(where, spec, "step", int) if "step" in spec else 1
    if step < 1 or (log and step != 1):
        raise SearchSpaceError(f"{where}: step must be >= 1 (and 1 with log), got {step}")
    return IntRange(low, high, step, log)


def _condition(where: str, entry: Mapping[str, Any], earlier: Mapping[str, Parameter]) -> Any:
    when = entry.get("when")
    if when is None:
        return None
    if not isinstance(when, dict) or set(when) != {"path", "in"}:
        raise SearchSpaceError(
            f"{where}: 'when' must be {{ path = ..., in = [...] }}, got {when!r}"
        )
    target = earlier.get(when["path"])
    if target is None or not isinstance(target.distribution, Choice):
        raise SearchSpaceError(
            f"{where}: 'when' must name an earlier choice parameter, got {when['path']!r}"
        )
    labels = tuple(str(v) for v in when["in"]) if isinstance(when["in"], list) else ()
    unknown = [v for v in labels if v not in target.distribution.labels]
    if not labels or unknown:
        raise SearchSpaceError(
            f"{where}: 'when.in' must list labels of {target.path!r} "
            f"{list(target.distribution.labels)}, got {when['in']!r}"
        )
    return Condition(target.path, labels)


def parse_space(text: str, source: str = "<string>") -> SearchSpace:
    """Read a search-space declaration (TOML text).

    Raises
    ------
    SearchSpaceError
        For invalid TOML, an unknown strategy or key, a malformed distribution or condition,
        or a path declared twice. (Whether the strategy has each parameter is
        :meth:`SearchSpace.check`'s question: it needs the universe.)
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SearchSpaceError(f"{source}: not valid TOML ({e})") from e
    unknown = sorted(set(data) - {"strategy", "fixed", "parameter"})
    if unknown:
        raise SearchSpaceError(f"{source}: unknown keys {unknown}")
    strategy = data.get("strategy")
    if strategy not in STRATEGIES:
        raise SearchSpaceError(
            f"{source}: strategy {strategy!r} unknown; known {sorted(STRATEGIES)}"
        )
    fixed = data.get("fixed", {})
    if not isinstance(fixed, dict):
        raise SearchSpaceError(f"{source}: [fixed] must be a table")
    entries = data.get("parameter", [])
    if not isinstance(entries, list) or not entries:
        raise SearchSpaceError(f"{source}: declare at least one [[parameter]]")
    declared: dict[str, Parameter] = {}
    for i, entry in enumerate(entries):
        path = entry.get("path") if isinstance(entry, dict) else None
        where = f"{source}: parameter #{i + 1}" + (f" ({path!r})" if path else "")
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise SearchSpaceError(f"{where}: 'path' must be a dotted name, got {path!r}")
        extra = sorted(set(entry) - {"path", "float", "int", "choice", "when"})
        if extra:
            raise SearchSpaceError(f"{where}: unknown keys {extra}")
        if path in declared:
            raise SearchSpaceError(f"{where}: declared twice")
        declared[path] = Parameter(
            path, _distribution(where, entry), _condition(where, entry, declared)
        )
    return SearchSpace(str(strategy), tuple(declared.values()), _tuples(fixed), source, text)


def default_space_path() -> Path:
    """The shipped search space of the default strategy."""
    return Path(str(resources.files("regime_trader.service") / "research_spaces" / DEFAULT_SPACE))


def load_space(path: Path | None = None) -> SearchSpace:
    """Read a search-space file (default: the shipped one).

    Raises
    ------
    SearchSpaceError
        If the file cannot be read or is invalid.
    """
    path = path or default_space_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SearchSpaceError(f"{path}: cannot read the search space ({e.strerror})") from e
    return parse_space(text, str(path))
