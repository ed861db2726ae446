"""A market is one row of configuration: everything keyed by market follows markets.csv."""

import pytest
import yaml

from market_intel import report_sections
from market_intel.feeds.bars import BAR_FEEDS, bar_feed
from market_intel.settings import DBT_PROJECT_DIR
from market_intel.storage import RAW_TABLES
from market_intel.universe import Market, markets

NEW_MARKET = Market("eu", "Europe", "XETR", "Europe/Berlin", "yfinance", "European Market")


def test_every_market_has_a_raw_table_a_dbt_source_and_a_live_feed() -> None:
    sources = yaml.safe_load((DBT_PROJECT_DIR / "models" / "sources.yml").read_text())
    raw = next(source for source in sources["sources"] if source["name"] == "raw")
    declared = {table["name"] for table in raw["tables"]}
    for code, market in markets().items():
        assert f"{code}_bars" in RAW_TABLES
        assert f"{code}_bars" in declared, f"sources.yml: add raw table {code}_bars"
        assert bar_feed(market) is BAR_FEEDS[market.feed]
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    assert sorted(project["vars"]["bar_markets"]) == sorted(markets()), (
        "dbt_project.yml: var bar_markets lists the markets of markets.csv "
        "(stg_market_bars unions their raw tables)"
    )


def test_an_unknown_feed_names_the_market_and_the_registered_feeds() -> None:
    with pytest.raises(NotImplementedError, match="'eu' names feed 'bloomberg'.*akshare, ccxt"):
        bar_feed(Market("eu", "Europe", "XETR", "Europe/Berlin", "bloomberg", "European Market"))


def test_a_new_market_row_gets_its_numbered_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_sections, "markets", lambda: {**markets(), "eu": NEW_MARKET})
    report = {"markets": [], "as_of_date": "2026-03-22", "breadth": None, "divergences": []}
    rules = {"us_style_pair": ["us/IXIC", "us/DJI"], "hk_comparison_pair": ["hk/HSI", "hk/HSTECH"]}
    rules["cn_intra_market_pair"] = ["cn/000300", "cn/399006"]
    built = report_sections.numbered(report_sections.market_sections(report, rules))
    assert [entry["id"] for entry in built] == ["us", "hk", "cn", "eu"]
    assert built[-1]["title"] == "4. European Market"
