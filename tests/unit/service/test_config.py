"""Start-up configuration: defaults, refusals that name the setting, portfolio files, secrets.

Every test starts from an environment without any ``RT_*``, ``ALPACA_*`` or ``REDIS_*``
variable, so what the developer's shell exports cannot leak into the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from regime_trader.service.config import ConfigError, Settings, load_settings
from regime_trader.service.cycle_context import planning_settings
from regime_trader.service.profiles import Profile, ProfileSource, load_profile, write_profile

PREFIXES = ("RT_", "ALPACA_", "REDIS_")
# Recognisable secret values: if one of them shows up in an error message, it leaked.
KEY_ID = "PKLEAKCHECKKEYID0001"
SECRET = "sk-LEAKCHECK-secret-0002"
REDIS_PW = "redis-LEAKCHECK-pw-0003"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    # A profile promoted in the developer's ~/.regime-trader must not decide what loads here.
    monkeypatch.setenv("RT_DATA_DIR", str(tmp_path / "data"))


def _refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    """Set ``env``, expect ConfigError from load_settings, return its message."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    return str(info.value)


PortfolioFile = Callable[[str], Path]


@pytest.fixture
def portfolio_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PortfolioFile:
    """Writes the text given as the portfolio file RT_CONFIG_FILE names; returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / "portfolios.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("RT_CONFIG_FILE", str(path))
        return path

    return write


CORE = '[[portfolio]]\nname = "core"\nsymbols = ["SPY", "TLT", "GLD"]\n'
# A second portfolio on its own account (keys in GROWTH_KEY_ID / GROWTH_SECRET_KEY).
GROWTH = (
    '[[portfolio]]\nname = "growth"\nsymbols = ["QQQ", "IEF"]\n'
    'key_id_env = "GROWTH_KEY_ID"\nsecret_key_env = "GROWTH_SECRET_KEY"\n'
)


# ----------------------------------------------------------------------------- defaults


def test_no_environment_gives_one_default_portfolio_on_the_paper_emulator() -> None:
    settings = load_settings()

    assert [p.name for p in settings.portfolios] == ["default"]
    (portfolio,) = settings.portfolios
    assert portfolio.symbols == ("SPY", "TLT", "GLD")
    assert portfolio.schedule_time == time(10, 0)
    assert settings.live_trading is False
    assert settings.uses_emulator is True
    assert settings.redis_url is None  # the embedded Redis
    assert settings.secret_values() == []


def test_symbols_and_schedule_of_the_default_portfolio_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RT_SYMBOLS", "QQQ, IEF  BRK.B")
    monkeypatch.setenv("RT_SCHEDULE_TIME", "15:45")

    (portfolio,) = load_settings().portfolios

    assert portfolio.symbols == ("QQQ", "IEF", "BRK.B")
    assert portfolio.schedule_time == time(15, 45)


def test_lowercase_symbols_in_the_environment_are_read_as_tickers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Documented normalisation of RT_SYMBOLS (a list in a TOML file is not normalised).
    monkeypatch.setenv("RT_SYMBOLS", "spy,tlt")

    assert load_settings().portfolios[0].symbols == ("SPY", "TLT")


# ----------------------------------------------------------------------------- invalid values


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("RT_HTTP_PORT", "eighty", "http_port"),
        ("RT_HTTP_PORT", "70000", "http_port"),
        ("RT_LOG_LEVEL", "LOUD", "log_level"),
        ("RT_LOG_FORMAT", "xml", "log_format"),
        ("REDIS_URL", "localhost:6379", "redis_url"),
        ("RT_SCHEDULE_TIME", "25:00", "schedule_time"),
        ("RT_LIVE_TRADING", "maybe", "live_trading"),
        ("RT_LOCK_TTL_SECS", "1", "lock_ttl_secs"),
        ("RT_DATA_FEED", "bloomberg", "data_feed"),
        ("RT_HTTP_TIMEOUT_SECS", "0", "http_timeout_secs"),
        ("RT_HTTP_RETRY_ATTEMPTS", "0", "http_retry_attempts"),
        ("RT_HTTP_RETRY_MAX_SECS", "-1", "http_retry_max_secs"),
        # faster than one order list a second would crowd Alpaca's 200 requests/min
        ("RT_FILL_POLL_INTERVAL_SECS", "0.25", "fill_poll_interval_secs"),
    ],
)
def test_an_invalid_setting_stops_start_up_naming_the_field_and_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    message = _refusal(monkeypatch, **{variable: value})

    assert field in message.lower()
    assert value in message


@pytest.mark.parametrize(
    ("value", "bad"),
    [("SPY,SPY", "SPY"), ("SPY,T$LT", "T$LT"), ("spy,SPY", "SPY"), (",", "symbols")],
    ids=["duplicate", "not-a-ticker", "duplicate-after-upper-casing", "empty"],
)
def test_invalid_rt_symbols_stop_start_up_with_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str, bad: str
) -> None:
    message = _refusal(monkeypatch, RT_SYMBOLS=value)

    assert "symbols" in message.lower()
    assert bad in message


def test_http_and_fill_wait_settings_reach_the_service_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from regime_trader.service.app import http_policy
    from regime_trader.service.metrics import ServiceMetrics

    for name, value in {
        "RT_HTTP_TIMEOUT_SECS": "3.5",
        "RT_HTTP_RETRY_ATTEMPTS": "6",
        "RT_HTTP_RETRY_MAX_SECS": "12",
        "RT_FILL_POLL_INTERVAL_SECS": "1.5",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    metrics = ServiceMetrics()
    policy = http_policy(settings, metrics, "core")
    assert (policy.timeout_secs, policy.retry_attempts, policy.retry_max_secs) == (3.5, 6, 12.0)
    assert settings.fill_poll_interval_secs == 1.5
    assert policy.rate_limited_hook is not None
    policy.rate_limited_hook("GET /v2/clock")
    counted = metrics.registry.get_sample_value(
        "regime_trader_broker_rate_limited_total", {"portfolio": "core"}
    )
    assert counted == 1


def test_default_fill_wait_rounds_are_at_least_a_second_apart() -> None:
    assert load_settings().fill_poll_interval_secs >= 1.0


# ----------------------------------------------------------------------------- portfolio file


def test_a_portfolio_file_with_two_portfolios_is_parsed(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio_file(
        CORE
        + "no_trade_band = 0.05\n"
        + "[portfolio.strategy_params]\nregime_blend = 0.5\n"
        + GROWTH
        + 'schedule_time = "11:30"\nstrategy = "equal_weight"\n',
    )
    # RT_SYMBOLS / RT_SCHEDULE_TIME only shape the default portfolio: a file replaces it.
    monkeypatch.setenv("RT_SYMBOLS", "XLE")

    core, growth = load_settings().portfolios

    assert (core.name, core.symbols, core.schedule_time) == (
        "core",
        ("SPY", "TLT", "GLD"),
        time(10),
    )
    assert core.no_trade_band == 0.05
    assert core.strategy_params == {"regime_blend": 0.5}
    assert (growth.name, growth.symbols, growth.schedule_time) == (
        "growth",
        ("QQQ", "IEF"),
        time(11, 30),
    )
    assert growth.strategy == "equal_weight"


@pytest.mark.parametrize(
    ("second_table", "expected"),
    [
        ('symbolz = ["QQQ"]\n', ["symbolz"]),
        ("no_trade_band = 1.5\n", ["no_trade_band", "1.5"]),
        ('schedule_time = "25:00"\n', ["schedule_time", "25:00"]),
        ('symbols = ["qqq"]\n', ["symbols", "qqq"]),
        ('strategy = "yolo"\n', ["strategy", "yolo"]),
        ("[portfolio.strategy_params]\nlookback = 20\n", ["strategy_params", "lookback"]),
        ("[portfolio.strategy_params]\nregime_blend = 2\n", ["strategy_params", "regime_blend"]),
    ],
    ids=[
        "unknown-key",
        "band-out-of-range",
        "bad-time",
        "lowercase-symbol",
        "unknown-strategy",
        "unknown-strategy-param",
        "strategy-param-out-of-range",
    ],
)
def test_an_invalid_portfolio_table_names_the_portfolio_and_the_field(
    portfolio_file: PortfolioFile,
    monkeypatch: pytest.MonkeyPatch,
    second_table: str,
    expected: list[str],
) -> None:
    path = portfolio_file(CORE + '[[portfolio]]\nname = "growth"\n')
    path.write_text(path.read_text() + second_table, encoding="utf-8")

    message = _refusal(monkeypatch)

    assert str(path) in message
    assert "portfolio #2" in message  # the second table: the first one is valid
    for word in expected:
        assert word in message


def test_an_invalid_portfolio_table_is_named_by_its_name(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio_file(
        CORE + '[[portfolio]]\nname = "growth"\n[portfolio.strategy_params]\nregime_blend = 2\n',
    )

    assert "growth" in _refusal(monkeypatch)


def test_duplicate_portfolio_names_are_refused(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio_file(CORE + '[[portfolio]]\nname = "core"\n')

    message = _refusal(monkeypatch)

    assert "unique" in message
    assert "core" in message


def test_an_unknown_top_level_key_is_refused(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio_file('title = "mine"\n' + CORE)

    message = _refusal(monkeypatch)

    assert "title" in message
    assert "top-level" in message


@pytest.mark.parametrize("text", ["", "portfolio = 3\n", '[portfolio]\nname = "core"\n'])
def test_a_file_without_portfolio_tables_is_refused(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    portfolio_file(text)

    assert "[[portfolio]]" in _refusal(monkeypatch)


def test_invalid_toml_is_refused_naming_the_file_and_the_line(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = portfolio_file(CORE + "[[portfolio]\nname = \n")

    message = _refusal(monkeypatch)

    assert "RT_CONFIG_FILE" in message
    assert str(path) in message
    assert "line 4" in message


def test_a_missing_portfolio_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.toml"

    message = _refusal(monkeypatch, RT_CONFIG_FILE=str(missing))

    assert f"RT_CONFIG_FILE={missing}" in message


GROWTH_KEY, GROWTH_SECRET = "growth-LEAKCHECK-key-0004", "growth-LEAKCHECK-secret-0005"


def _two_accounts(portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch) -> None:
    portfolio_file(CORE + GROWTH)
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)


# ----------------------------------------------------------------------------- secrets and keys


def test_secrets_are_read_from_files_named_by_the_file_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [
        ("ALPACA_API_KEY_ID", KEY_ID),
        ("ALPACA_API_SECRET_KEY", SECRET),
        ("REDIS_PASSWORD", REDIS_PW),
    ]:
        secret_file = tmp_path / name.lower()
        secret_file.write_text(value + "\n", encoding="utf-8")  # as `echo` writes it
        monkeypatch.setenv(f"{name}_FILE", str(secret_file))

    settings = load_settings()

    assert settings.alpaca_api_key_id is not None
    assert settings.alpaca_api_key_id.get_secret_value() == KEY_ID
    assert settings.alpaca_api_secret_key is not None
    assert settings.alpaca_api_secret_key.get_secret_value() == SECRET
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == REDIS_PW
    assert settings.uses_emulator is False
    assert settings.secret_values() == sorted([KEY_ID, SECRET, REDIS_PW])
    assert KEY_ID not in repr(settings)
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "others"),
    [
        ("ALPACA_API_KEY_ID", KEY_ID, {"ALPACA_API_SECRET_KEY": SECRET}),
        ("GROWTH_KEY_ID", GROWTH_KEY, {"GROWTH_SECRET_KEY": GROWTH_SECRET}),
    ],
    ids=["service-wide", "portfolio"],
)
def test_a_secret_set_both_directly_and_as_a_file_is_refused(
    portfolio_file: PortfolioFile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    others: dict[str, str],
) -> None:
    _two_accounts(portfolio_file, monkeypatch)
    secret_file = tmp_path / "key"
    secret_file.write_text(value, encoding="utf-8")

    message = _refusal(monkeypatch, **{name: value, f"{name}_FILE": str(secret_file)}, **others)

    assert name in message and f"{name}_FILE" in message
    for secret in (value, *others.values()):
        assert secret not in message


@pytest.mark.parametrize("problem", ["missing", "directory"])
def test_an_unreadable_secret_file_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str
) -> None:
    path = tmp_path / "absent" if problem == "missing" else tmp_path

    message = _refusal(monkeypatch, ALPACA_API_SECRET_KEY_FILE=str(path), ALPACA_API_KEY_ID=KEY_ID)

    assert "ALPACA_API_SECRET_KEY_FILE" in message
    assert str(path) in message
    assert KEY_ID not in message


def test_an_empty_secret_file_is_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "key"
    empty.write_text("\n", encoding="utf-8")

    message = _refusal(monkeypatch, ALPACA_API_KEY_ID_FILE=str(empty), ALPACA_API_SECRET_KEY=SECRET)

    assert "ALPACA_API_KEY_ID_FILE" in message
    assert SECRET not in message


@pytest.mark.parametrize("given", ["ALPACA_API_KEY_ID", "ALPACA_API_SECRET_KEY"])
def test_one_alpaca_key_without_the_other_is_refused(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    message = _refusal(monkeypatch, **{given: SECRET})

    assert "ALPACA_API_KEY_ID" in message
    assert "ALPACA_API_SECRET_KEY" in message
    assert SECRET not in message


def test_live_trading_without_keys_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, RT_LIVE_TRADING="true")

    assert "RT_LIVE_TRADING" in message
    assert "ALPACA_API_KEY_ID" in message


def test_live_trading_with_keys_is_the_explicit_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_LIVE_TRADING", "true")
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)

    settings = load_settings()

    assert settings.live_trading is True
    assert settings.uses_emulator is False


@pytest.mark.parametrize(
    ("variable", "template"),
    [
        ("RT_HTTP_PORT", "{secret}"),
        ("RT_LOG_LEVEL", "{secret}"),
        ("RT_SCHEDULE_TIME", "{secret}"),
        ("RT_HTTP_PORT", "port-{secret}-x"),
    ],
)
@pytest.mark.parametrize("secret_name", ["ALPACA_API_SECRET_KEY", "REDIS_PASSWORD"])
def test_secrets_never_appear_in_a_config_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, template: str, secret_name: str
) -> None:
    # The worst case: the secret was pasted into the wrong variable as well.
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("REDIS_PASSWORD", REDIS_PW)
    secret = SECRET if secret_name == "ALPACA_API_SECRET_KEY" else REDIS_PW

    message = _refusal(monkeypatch, **{variable: template.format(secret=secret)})

    for value in (KEY_ID, SECRET, REDIS_PW):
        assert value not in message
    assert variable.removeprefix("RT_").lower() in message.lower()


def test_a_secret_read_from_a_file_never_appears_in_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY_FILE", str(secret_file))

    message = _refusal(monkeypatch, RT_LOG_LEVEL=SECRET)

    assert SECRET not in message
    assert "RT_LOG_LEVEL" in message


def test_a_secret_pasted_into_rt_symbols_never_appears_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("RT_SYMBOLS", f"SPY,{SECRET}")

    with pytest.raises(ConfigError) as info:  # anything else escapes unredacted
        load_settings()

    assert SECRET not in str(info.value)
    assert SECRET.upper() not in str(info.value)


def test_a_password_inside_an_invalid_redis_url_never_appears_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, REDIS_URL=f"redis//:{REDIS_PW}@db:6379/0")

    assert "REDIS_URL" in message
    assert REDIS_PW not in message


def test_secret_values_include_the_password_inside_redis_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:{REDIS_PW}@db:6379/0")

    assert REDIS_PW in load_settings().secret_values()


def test_secret_values_lists_every_secret_including_per_portfolio_keys(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    portfolio_file(
        CORE + 'key_id_env = "CORE_KEY_ID"\nsecret_key_env = "CORE_SECRET_KEY"\n',
    )
    monkeypatch.setenv("CORE_KEY_ID", "core-key-id-4711")
    monkeypatch.setenv("CORE_SECRET_KEY", "core-secret-key-4712")
    monkeypatch.setenv("ALPACA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("ALPACA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("REDIS_PASSWORD", REDIS_PW)

    settings = load_settings()

    assert settings.secret_values() == sorted(
        [KEY_ID, SECRET, REDIS_PW, "core-key-id-4711", "core-secret-key-4712"]
    )
    assert isinstance(settings, Settings)


# ----------------------------------------------------------------------------- per-portfolio keys


def test_each_portfolio_keys_are_resolved_once_into_the_settings(
    portfolio_file: PortfolioFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_accounts(portfolio_file, monkeypatch)
    monkeypatch.setenv("GROWTH_KEY_ID", GROWTH_KEY)
    secret_file = tmp_path / "growth-secret"
    secret_file.write_text(GROWTH_SECRET + "\n", encoding="utf-8")
    monkeypatch.setenv("GROWTH_SECRET_KEY_FILE", str(secret_file))

    settings = load_settings()
    # Read once: what the environment says later changes nothing.
    monkeypatch.delenv("GROWTH_KEY_ID")
    monkeypatch.delenv("ALPACA_API_SECRET_KEY")

    core, growth = settings.account_keys("core"), settings.account_keys("growth")
    assert (core.key_id.get_secret_value(), core.secret_key.get_secret_value()) == (KEY_ID, SECRET)
    assert (growth.key_id.get_secret_value(), growth.secret_key.get_secret_value()) == (
        GROWTH_KEY,
        GROWTH_SECRET,
    )
    assert GROWTH_KEY not in repr(settings) and GROWTH_SECRET not in repr(settings)
    assert {GROWTH_KEY, GROWTH_SECRET} <= set(settings.secret_values())


def test_a_portfolio_without_its_own_variables_uses_the_service_wide_keys(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_accounts(portfolio_file, monkeypatch)  # GROWTH_KEY_ID / GROWTH_SECRET_KEY unset

    growth = load_settings().account_keys("growth")

    assert (growth.key_id.get_secret_value(), growth.secret_key.get_secret_value()) == (
        KEY_ID,
        SECRET,
    )


def test_the_emulator_has_no_account_keys_to_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()

    assert settings.uses_emulator and settings.accounts == {}
    with pytest.raises(ConfigError, match="'default' has no Alpaca keys"):
        settings.account_keys("default")


@pytest.mark.parametrize("given", ["GROWTH_KEY_ID", "GROWTH_SECRET_KEY"])
def test_one_portfolio_key_without_the_other_is_refused_naming_both(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    _two_accounts(portfolio_file, monkeypatch)

    message = _refusal(monkeypatch, **{given: GROWTH_SECRET})

    assert "'growth'" in message
    assert "GROWTH_KEY_ID" in message and "GROWTH_SECRET_KEY" in message
    for value in (GROWTH_SECRET, KEY_ID, SECRET):
        assert value not in message


def test_an_empty_portfolio_key_is_refused_naming_the_variable(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_accounts(portfolio_file, monkeypatch)

    message = _refusal(monkeypatch, GROWTH_KEY_ID=" ", GROWTH_SECRET_KEY=GROWTH_SECRET)

    assert message.startswith("GROWTH_KEY_ID is set but empty")
    assert GROWTH_SECRET not in message


def test_a_configuration_error_about_portfolio_keys_exits_2_naming_the_field(
    portfolio_file: PortfolioFile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from regime_trader.service.cli import main

    _two_accounts(portfolio_file, monkeypatch)
    monkeypatch.setenv("GROWTH_SECRET_KEY", GROWTH_SECRET)

    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("regime-trader status: configuration error: portfolio 'growth'")
    assert "GROWTH_KEY_ID" in err and GROWTH_SECRET not in err


@pytest.mark.parametrize("variable", ["RT_PORTFOLIOS", "RT_ACCOUNTS"])
def test_the_derived_settings_are_never_read_from_a_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    # Not JSON: a variable read as a complex field would stop load_settings with a traceback.
    monkeypatch.setenv(variable, "not json")

    settings = load_settings()

    assert [p.name for p in settings.portfolios] == ["default"]
    assert settings.accounts == {}


# ----------------------------------------------------------------------------- profiles


def test_the_default_portfolio_runs_the_default_profile() -> None:
    (portfolio,) = load_settings().portfolios
    shipped = load_profile("default", data_dir=Path(os.environ["RT_DATA_DIR"]))
    assert portfolio.profile_label == shipped.label
    assert portfolio.strategy == shipped.strategy_name
    assert portfolio.strategy_params == shipped.overrides()


def test_rt_profile_names_the_default_portfolios_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    _write("calm", 1, "erc_static", {"cov_halflife": 42.0})
    monkeypatch.setenv("RT_PROFILE", "calm")
    (portfolio,) = load_settings().portfolios
    assert (portfolio.profile_label, portfolio.strategy) == ("calm v1", "erc_static")
    assert portfolio.strategy_params == {"cov_halflife": 42.0}


def test_a_portfolio_names_its_profile_and_overrides_on_top_of_it(
    portfolio_file: PortfolioFile,
) -> None:
    _write("tuned", 1, "regime_erc", {"shrinkage": 0.3, "policy": {"stress_cut": 0.4}})
    _write("tuned", 2, "regime_erc", {"shrinkage": 0.2, "policy": {"stress_cut": 0.6}})
    portfolio_file(
        CORE
        + 'profile = "tuned"\nprofile_version = 1\n'
        + "[portfolio.strategy_params.policy]\nalpha_down = 0.2\n"
        + '[[portfolio]]\nname = "latest"\nsymbols = ["SPY", "TLT"]\nprofile = "tuned"\n'
        + 'key_id_env = "LATEST_KEY"\nsecret_key_env = "LATEST_SECRET"\n',
    )
    core, latest = load_settings().portfolios
    assert core.profile_label == "tuned v1"
    assert core.strategy_params == {
        "shrinkage": 0.3,
        "policy": {"stress_cut": 0.4, "alpha_down": 0.2},
    }
    assert latest.profile_label == "tuned v2"  # no version: the highest
    assert latest.strategy_params == {"shrinkage": 0.2, "policy": {"stress_cut": 0.6}}


def test_a_portfolio_with_its_own_strategy_and_no_profile_runs_as_before(
    portfolio_file: PortfolioFile,
) -> None:
    portfolio_file(CORE + "[portfolio.strategy_params]\nshrinkage = 0.2\n")
    (core,) = load_settings().portfolios
    assert (core.profile_label, core.strategy, core.strategy_params) == (
        None,
        "regime_erc",
        {"shrinkage": 0.2},
    )


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('profile = "nowhere"\n', ["'core'", "'nowhere'"]),
        (
            'profile = "tuned"\nstrategy = "equal_weight"\n',
            ["'core'", "equal_weight", "regime_erc"],
        ),
        (
            'profile = "tuned"\n[portfolio.strategy_params]\nshrinkage = 7\n',
            ["tuned v1", "shrinkage"],
        ),
        ('profile_label = "mine v9"\n', ["profile_label"]),
        ('risk_tolerance = "bold"\n', ["'core'", "risk_tolerance", "bold"]),
        (
            '[[portfolio]]\nname = "odd"\nsymbols = ["SPY", "XYZ"]\nrisk_tolerance = "moderate"\n'
            'key_id_env = "ODD_KEY"\nsecret_key_env = "ODD_SECRET"\n',
            ["'odd'", "'XYZ'", "asset_classes"],
        ),
        (
            'strategy = "equal_weight"\nrisk_tolerance = "moderate"\n',
            ["'core'", "'equal_weight' has neither"],
        ),
        ('risk_tolerance_label = "mine"\n', ["risk_tolerance_label is derived"]),
    ],
    ids=[
        "unknown-profile",
        "other-strategy",
        "bad-override",
        "label-is-derived",
        "unknown-tolerance",
        "unclassed-symbol",
        "tolerance-without-knobs",
        "tolerance-label-is-derived",
    ],
)
def test_a_profile_or_tolerance_that_cannot_be_used_stops_start_up_naming_it(
    portfolio_file: PortfolioFile, monkeypatch: pytest.MonkeyPatch, table: str, expected: list[str]
) -> None:
    _write("tuned", 1, "regime_erc", {"shrinkage": 0.3})
    portfolio_file(CORE + table)
    message = _refusal(monkeypatch)
    for part in expected:
        assert part in message


def test_the_exposure_band_reaches_the_planner(portfolio_file: PortfolioFile) -> None:
    portfolio_file(CORE + "exposure_band = 0.05\n")
    (core,) = load_settings().portfolios
    assert core.exposure_band == 0.05
    assert planning_settings(core).exposure_band == Decimal("0.05")


def test_a_secret_inside_the_config_file_path_never_appears_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the fuzz test: a Redis URL pasted into RT_CONFIG_FILE quoted its password.
    message = _refusal(
        monkeypatch,
        REDIS_PASSWORD=REDIS_PW,
        RT_CONFIG_FILE=f"rediss://:{REDIS_PW}@host:6380/1",
    )
    assert "RT_CONFIG_FILE" in message
    assert REDIS_PW not in message


def _write(name: str, version: int, strategy: str, params: dict[str, Any]) -> None:
    profile = Profile(
        name=name,
        version=version,
        strategy_name=strategy,
        params=params,
        source=ProfileSource(symbols=("SPY", "TLT", "GLD")),
    )
    write_profile(profile, data_dir=Path(os.environ["RT_DATA_DIR"]))


# ----------------------------------------------------------------------------- risk tolerance


def test_a_risk_tolerance_sets_the_budgets_target_and_band_of_the_profiles_strategy(
    portfolio_file: PortfolioFile,
) -> None:
    portfolio_file(
        CORE
        + 'risk_tolerance = "conservative"\n'
        + '[[portfolio]]\nname = "own-band"\nsymbols = ["SPY", "XYZ"]\n'
        + 'key_id_env = "OWN_KEY"\nsecret_key_env = "OWN_SECRET"\n'
        + 'no_trade_band = 0.05\nrisk_tolerance = { base = "moderate", target_vol = 0.08 }\n'
        + '[portfolio.asset_classes]\nXYZ = "real"\n',
    )
    core, own = load_settings().portfolios
    assert core.strategy == "erc_static"  # the shipped default profile's strategy
    assert core.strategy_params["risk_budgets"] == pytest.approx([0.25, 0.55, 0.20])
    assert (core.strategy_params["target_vol"], core.no_trade_band) == (0.06, 0.03)
    assert core.strategy_label.endswith(", risk tolerance conservative")
    assert own.strategy_params["risk_budgets"] == pytest.approx([2 / 3, 1 / 3])
    assert (own.strategy_params["target_vol"], own.no_trade_band) == (0.08, 0.05)
    assert own.risk_tolerance_label == "custom (moderate)"


def test_rt_risk_tolerance_sets_the_default_portfolios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RT_RISK_TOLERANCE", "aggressive")
    (portfolio,) = load_settings().portfolios
    assert portfolio.risk_tolerance_label == "aggressive"
    assert portfolio.strategy_params["max_exposure"] == 1.0
