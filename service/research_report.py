"""The report of a research study, as Markdown and HTML, written from what the study stores.

Everything shown comes from the study in the journal storage: its configuration, its trials
and, once closed, its close record (chosen parameters, development-window comparison, deflated
Sharpe ratio, PBO and the validation result, computed once). Writing a report never computes
anything on the validation window, so reports can be written as often as wanted.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.study import Study
from optuna.trial import TrialState

from regime_trader.service.research_close import StudyClose, closed_record
from regime_trader.service.research_config import StudyConfig, tolerance_leaves, trial_folds
from regime_trader.service.research_study import CLOSED_ATTR, CONFIG_ATTR, load_config
from regime_trader.service.research_trial import BENCHMARK, OBJECTIVE, VOL_MATCHED, WindowResult
from regime_trader.strategies.research_folds import FoldPlan

__all__ = ["render_report", "validation_peeks", "write_report"]

ROW_NAMES = {
    "strategy": "strategy (chosen)",
    BENCHMARK: "static ERC",
    VOL_MATCHED: "static ERC, vol-matched",
    "equal_weight": "equal weight",
    "sixty_forty": "60/40",
    "buy_hold": "buy-and-hold (first asset)",
}


@dataclass(frozen=True)
class Block:
    kind: str  # "h1", "h2", "p", "table", "code"
    text: str = ""
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _tolerance_row(config: StudyConfig) -> tuple[str, str]:
    t = config.risk_tolerance
    if t is None:
        return ("risk tolerance", "none (the space's parameters alone)")
    budgets = " / ".join(f"{c} {_pct(b)}" for c, b in t["class_budgets"].items())
    return (
        "risk tolerance",
        f"{t['name']}: target vol {_pct(t['target_vol'])}, risk budgets {budgets}, exposure "
        f"{_pct(t['min_exposure'])} to {_pct(t['max_exposure'])}, band {t['no_trade_band']:g}"
        + ("" if not config.asset_classes else f"; asset classes given {config.asset_classes}"),
    )


def _macro_row(config: StudyConfig) -> tuple[str, str]:
    if config.macro_sha256 is None:
        return ("macro series", "none (the strategy reads none)")
    return (
        "macro series",
        f"`{config.macro_source}`, SHA-256 `{config.macro_sha256}` (of the series as read), "
        "joined to the closes as of each session in every trial and window",
    )


def _sleeve_row(config: StudyConfig) -> tuple[str, str]:
    if config.sleeve_sha256 is None:
        return ("sleeve prices", "none (the strategy trades the data file's symbols)")
    return (
        "sleeve prices",
        f"`{config.sleeve_file}`, SHA-256 `{config.sleeve_sha256}`: its stocks joined to the "
        "data file on their common sessions, the strategy's sleeve_symbols unless the space sets "
        "them; every benchmark runs on the data file's symbols alone (the stocks at weight 0)",
    )


def _space(config: StudyConfig) -> list[Block]:
    """The declared space, and under a tolerance the parameters it added to ``[fixed]``."""
    if config.risk_tolerance_params is None:
        return [
            Block("p", f"Search space: `{config.space_source}`"),
            Block("code", config.space_text.strip()),
        ]
    rows = tuple(
        (
            path,
            ", ".join(_param(v) for v in value) if isinstance(value, list) else _param(value),
            "sampled instead" if sampled else "yes",
        )
        for path, value, sampled in tolerance_leaves(config)
    )
    return [
        Block("p", f"Search space: `{config.space_source}`, as declared"),
        Block("code", (config.declared_space_text or "").strip()),
        Block(
            "p",
            f"Risk tolerance **{config.risk_tolerance_name}** adds these parameters to every "
            "trial's [fixed] ones (and to the profile); a sampled parameter wins over it:",
        ),
        Block("table", headers=("parameter", "value", "applied"), rows=rows),
    ]


def _protocol(config: StudyConfig, plan: FoldPlan | None) -> list[Block]:
    blocks = [
        Block("h2", "Protocol"),
        Block(
            "table",
            headers=("item", "value"),
            rows=(
                ("data file", f"`{config.data_file}`"),
                ("data SHA-256", f"`{config.data_sha256}`"),
                _macro_row(config),
                _sleeve_row(config),
                ("symbols", ", ".join(config.symbols)),
                ("development window", f"{config.dev_start} to {config.dev_end}"),
                (
                    "validation window",
                    f"{config.validation_start} to {config.validation_end} (shown once, below)",
                ),
                (
                    "costs",
                    f"{config.cost_bps:g} bps per unit of one-way turnover, lag {config.lag}",
                ),
                ("strategy", config.strategy),
                _tolerance_row(config),
                ("trials", f"{config.n_trials}, TPE seeded by (seed {config.seed}, trial number)"),
                (
                    "folds",
                    f"{config.n_folds} walk-forward test blocks after a warm-up of "
                    f"{config.warmup_days} return days; purge {config.purge_days}, "
                    f"embargo {config.embargo_days} days",
                ),
                (
                    "bootstrap",
                    f"stationary, mean block {config.block_length:g} days, {config.n_boot} "
                    "resamples, 95% percentile intervals",
                ),
                (
                    "execution",
                    f"the live planner's band on every execution: weight band "
                    f"{config.execution_weight_band:g}, exposure band "
                    f"{config.execution_exposure_band:g}",
                ),
                (
                    "drawdown guard",
                    "on: a trial is feasible only if its max drawdown after the warm-up is no "
                    "deeper than vol-matched static ERC's; the best feasible trial is chosen"
                    if config.drawdown_guard
                    else "off: the best objective is chosen",
                ),
            ),
        ),
        Block("p", "**Objective.** " + OBJECTIVE),
    ]
    if plan is not None:
        rows = tuple(
            (
                str(f.number),
                str(plan.days[f.block_start].date()),
                str(plan.days[f.scored_start].date()),
                str(plan.days[f.block_stop - 1].date()),
                str(f.n_scored),
            )
            for f in plan.folds
        )
        blocks.append(
            Block(
                "table",
                headers=("fold", "block start", "first scored", "last scored", "scored days"),
                rows=rows,
            )
        )
    return blocks + _space(config)


def _trials(study: Study, config: StudyConfig) -> list[Block]:
    trials = study.get_trials(deepcopy=False)
    headers = (
        "#",
        "state",
        "worker",
        "objective",
        *(f"fold {k}" for k in range(config.n_folds)),
        "Sharpe",
        "max DD",
        "vol-matched ERC DD",
        "turnover/yr",
        "secs",
        "parameters",
    )
    rows = []
    for t in trials:
        attrs = t.user_attrs
        folds = trial_folds(attrs) if "folds" in attrs else ()
        fold_cells = [_num(f.difference) for f in folds] or ["-"] * config.n_folds
        params = ", ".join(f"{k}={_param(v)}" for k, v in sorted(t.params.items()))
        if "refused" in attrs:
            params += f" (refused: {attrs['refused']})"
        rows.append(
            (
                str(t.number),
                t.state.name.lower(),
                str(attrs.get("worker", "")),
                _num(t.value, 3),
                *fold_cells,
                _num(attrs.get("sharpe")),
                _pct(attrs.get("max_drawdown")),
                _pct(attrs.get("vol_matched_max_drawdown")),
                _num(attrs.get("turnover_per_year")),
                _num(attrs.get("seconds"), 1),
                params,
            )
        )
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    return [
        Block("h2", "Trials"),
        Block(
            "p",
            f"{len(trials)} trials ({complete} complete). A fold cell is the fold's Sharpe "
            "difference against static ERC; Sharpe, max DD and turnover are the trial's over "
            "the scored days / after the warm-up.",
        ),
        Block("table", headers=headers, rows=tuple(rows)),
    ]


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _window(title: str, result: WindowResult, note: str) -> list[Block]:
    rows = tuple(
        (
            ROW_NAMES.get(name, name),
            _num(m["sharpe"]),
            _pct(m["max_drawdown"]),
            _pct(m["cagr"]),
            _pct(m["volatility"]),
            _num(m["turnover_per_year"]),
        )
        for name, m in result.rows.items()
    )
    d = result.difference
    return [
        Block("h2", title),
        Block("p", f"{result.first_day} to {result.last_day}, {result.n_days} days. {note}"),
        Block(
            "table",
            headers=("", "Sharpe", "max DD", "CAGR", "vol", "turnover/yr"),
            rows=rows,
        ),
        Block(
            "p",
            f"Sharpe difference against static ERC: **{_num(d['difference'])}**, "
            f"{100 * d['confidence']:.0f}% block-bootstrap interval "
            f"[{_num(d['ci_low'])}, {_num(d['ci_high'])}] (stationary bootstrap, mean block "
            f"{d['mean_block_length']:g} days, {int(d['n_boot'])} resamples, seed "
            f"{int(d['seed'])}; positive in {100 * d['share_positive']:.0f}% of resamples). "
            f"The same difference holds against vol-matched static ERC (a Sharpe ratio is "
            f"scale-free); that benchmark holds {_num(result.vol_match_scale)} of static ERC.",
        ),
    ]


def _selection(record: StudyClose) -> list[Block]:
    rows = []
    for label, d in (
        ("strategy returns", record.deflated),
        ("active returns over vol-matched static ERC", record.deflated_active),
    ):
        if d is None:
            rows.append((label, "n/a", "n/a", "n/a", "n/a"))
            continue
        root = math.sqrt(252)
        rows.append(
            (
                label,
                _num(d["dsr"], 3),
                _num(d["sharpe"] * root),
                _num(d["expected_max"] * root),
                f"{int(d['n_trials'])} trials, {int(d['n_obs'])} days, skew "
                f"{_num(d['skewness'])}, kurtosis {_num(d['kurtosis'])}",
            )
        )
    blocks = [
        Block("h2", "Selection statistics over the trials run"),
        Block(
            "p",
            "Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the probability that the "
            "chosen trial's true Sharpe ratio is above 0 given how many trials were searched "
            "and how much their Sharpe ratios vary (annualised figures below; computed on the "
            "folds' scored days).",
        ),
        Block(
            "table",
            headers=("series", "DSR", "Sharpe", "E[max Sharpe] of N null trials", "inputs"),
            rows=tuple(rows),
        ),
    ]
    if record.pbo is None:
        blocks.append(Block("p", "PBO: n/a (fewer than 2 complete trials)."))
    else:
        p = record.pbo
        blocks.append(
            Block(
                "p",
                f"Probability of backtest overfitting (CSCV, Bailey, Borwein, Lopez de Prado & "
                f"Zhu 2017): **{_num(p['pbo'], 3)}** over {int(p['n_trials'])} trials, "
                f"{int(p['n_blocks'])} blocks ({int(p['n_combinations'])} splits) of the "
                f"{int(p['n_obs'])} scored days; the in-sample best loses money out of sample "
                f"in {100 * p['prob_oos_loss']:.0f}% of splits. Near 0.5: the search found "
                "nothing; near 0: its best trial is robustly best.",
            )
        )
    return blocks


def validation_peeks(study: Study, config: StudyConfig) -> list[str]:
    """Names of the closed studies in this storage that looked at the same validation window
    of the same data (this one included)."""
    names = []
    for other in study._storage.get_all_studies():
        data = other.user_attrs.get(CONFIG_ATTR)
        if not isinstance(data, dict) or CLOSED_ATTR not in other.user_attrs:
            continue
        if (data.get("data_sha256"), data.get("validation_start"), data.get("validation_end")) == (
            config.data_sha256,
            config.validation_start,
            config.validation_end,
        ):
            names.append(other.study_name)
    return sorted(names)


def _blocks(study: Study, storage_label: str, plan: FoldPlan | None) -> list[Block]:
    config = load_config(study)
    record = closed_record(study)
    status = f"closed at {record.closed_at}" if record else "open (the search is not finished)"
    blocks = [
        Block("h1", f"Research study `{study.study_name}`"),
        Block(
            "p",
            f"Storage: `{storage_label}`. Status: {status}."
            + (
                ""
                if config.risk_tolerance_name is None
                else f" Searched under risk tolerance **{config.risk_tolerance_name}**."
            ),
        ),
        *_protocol(config, plan),
        *_trials(study, config),
    ]
    if record is None:
        blocks.append(
            Block(
                "p",
                "The chosen parameters, the development-window comparison, the deflated Sharpe "
                "ratio, PBO and the validation result appear once every trial has finished and "
                "the study is closed.",
            )
        )
        return blocks
    blocks += [
        Block("h2", "Chosen parameters"),
        Block(
            "p",
            f"Trial {record.chosen_trial}, objective {_num(record.objective, 3)} "
            f"({record.n_complete} complete trials, {record.n_failed} failed; "
            f"{record.n_feasible} feasible under the drawdown guard"
            + (
                ")."
                if record.chosen_feasible
                else "; **no trial met the guard: the best trial is shown, not a feasible one**)."
            ),
        ),
        Block(
            "table",
            headers=("parameter", "value"),
            rows=tuple((k, _param(v)) for k, v in sorted(record.chosen_params.items())),
        ),
        *_window(
            "Development window (chosen parameters)",
            record.development,
            "From the end of the folds' warm-up to the development end: every decision causal, "
            "but these days chose the parameters (in-sample for the choice).",
        ),
        *_selection(record),
    ]
    peeks = validation_peeks(study, config)
    blocks += _window(
        "Validation window: the one look",
        record.validation,
        f"Computed once, when the study closed ({record.closed_at}), and shown from the study "
        f"since. Closed studies on this storage that looked at this data's validation window: "
        f"{len(peeks)} ({', '.join(peeks)}).",
    )
    return blocks


def _markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "h1":
            out.append(f"# {b.text}")
        elif b.kind == "h2":
            out.append(f"## {b.text}")
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "code":
            out.append(f"```toml\n{b.text}\n```")
        else:
            lines = ["| " + " | ".join(b.headers) + " |", "|" + "---|" * len(b.headers)]
            lines += [
                "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows
            ]
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the blocks use: **bold** and `code`."""
    parts = html.escape(text).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    joined = "".join(parts)
    bold = joined.split("**")
    for i in range(1, len(bold), 2):
        bold[i] = f"<strong>{bold[i]}</strong>"
    return "".join(bold)


def _html(blocks: Sequence[Block], title: str) -> str:
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:75em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:right}td:first-child,th:first-child{text-align:left}"
        "pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2"):
            out.append(f"<{b.kind}>{_inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "code":
            out.append(f"<pre>{html.escape(b.text)}</pre>")
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_report(study: Study, storage_label: str, plan: FoldPlan | None) -> tuple[str, str]:
    """The report as (Markdown, HTML)."""
    blocks = _blocks(study, storage_label, plan)
    return _markdown(blocks), _html(blocks, f"Research study {study.study_name}")


def write_report(
    study: Study, storage_label: str, plan: FoldPlan | None, out_dir: Path
) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    markdown, page = render_report(study, storage_label, plan)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.md", out_dir / "report.html"]
    paths[0].write_text(markdown, encoding="utf-8")
    paths[1].write_text(page, encoding="utf-8")
    return paths
