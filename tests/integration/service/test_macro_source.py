"""The macro series from a file or over real HTTP, validated at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from regime_trader.service.http import start_http_server
from regime_trader.service.macro_source import MacroFileError, load_macro, main

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
GOOD = (
    "date,VIX,UST10Y,SPREAD_10Y2Y,SPREAD_10Y3M\n"
    "2019-01-02,23.2,2.66,0.16,0.26\n"
    "2019-01-03,25.5,2.56,0.16,0.16\n"
    "2019-01-04,21.4,2.67,0.17,0.24\n"
)


@pytest.fixture
def served() -> Iterator[str]:
    files = {"good.csv": GOOD, "short.csv": "date,VIX\n2019-01-02,23.2\n"}

    async def serve(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            return PlainTextResponse("no such file", status_code=404)
        return PlainTextResponse(files[name], media_type="text/csv")

    server = start_http_server(Starlette(routes=[Route("/{name}", serve)]), port=0)
    try:
        yield server.url
    finally:
        server.stop()


def test_a_file_and_a_url_give_the_same_validated_series(tmp_path: Path, served: str) -> None:
    path = tmp_path / "macro.csv"
    path.write_text(GOOD, "utf-8")
    from_file, from_url = load_macro(path), load_macro(f"{served}/good.csv")
    assert from_file.equals(from_url)
    assert list(from_file.columns) == ["VIX", "UST10Y", "SPREAD_10Y2Y", "SPREAD_10Y3M"]
    assert from_file.loc["2019-01-03", "VIX"] == 25.5


def test_a_bad_source_is_refused_with_where_and_why(tmp_path: Path, served: str) -> None:
    with pytest.raises(MacroFileError, match=r"short\.csv: no column \['SPREAD_10Y2Y'"):
        load_macro(f"{served}/short.csv")
    with pytest.raises(MacroFileError, match="cannot fetch"):
        load_macro(f"{served}/absent.csv")
    with pytest.raises(MacroFileError, match="cannot read"):
        load_macro(tmp_path / "absent.csv")
    cases = {
        "line 3, column 'VIX': 'n/a'": GOOD.replace("25.5", "n/a"),
        "line 4, column 'SPREAD_10Y3M': ''": GOOD.replace(",0.24", ","),
        "strictly increasing": GOOD.replace("2019-01-04", "2019-01-03"),
        "not YYYY-MM-DD": GOOD.replace("2019-01-04", "04/01/2019"),
    }
    for expected, text in cases.items():
        path = tmp_path / "bad.csv"
        path.write_text(text, "utf-8")
        with pytest.raises(MacroFileError, match=expected.replace("(", r"\(")):
            load_macro(path)


def test_a_token_in_the_url_never_reaches_the_message(served: str) -> None:
    user = served.replace("http://", "http://reader:pw-LEAKCHECK@")
    with pytest.raises(MacroFileError) as info:
        load_macro(f"{user}/absent.csv?token=tok-LEAKCHECK#frag")
    message = str(info.value)
    assert message == f"{served}/absent.csv: cannot fetch the macro series (HTTP 404)"
    assert "LEAKCHECK" not in message and info.value.__cause__ is None
    with pytest.raises(MacroFileError, match=r"short\.csv: no column") as info:
        load_macro(f"{served}/short.csv?token=tok-LEAKCHECK")
    assert "LEAKCHECK" not in str(info.value)


def test_the_correlation_table_prints_for_the_development_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    prices, macro = DATA / "multiasset13_2007_2019.csv", DATA / "macro_vix_ust_1990_2019.csv"
    if not (prices.is_file() and macro.is_file()):
        pytest.skip("needs ../shared/data")
    assert main([str(prices), str(macro), "--from", "2008-01-01", "--to", "2015-12-31"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n| ") == 6 and "| vix | SPY realised vol, 21 sessions |" in out
