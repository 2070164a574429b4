"""The scripted demo, against a fake chain funded by the devnet genesis."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import bookchain
from devnet.demo import run_demo
from tests.devnet.fakes import fake_devnet


def test_demo_trades_and_finds_the_block(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    lines: list[str] = []
    with fake_devnet(home, nodes=1, traders=0):
        res = run_demo(str(home), say=lines.append)
    assert len(lines) == 2 and "alice" in lines[0] and "bob" in lines[1]
    assert res.sell["receipt"]["results"][0]["status"] == "resting"
    fills = res.buy["receipt"]["results"][0]["fills"]
    assert len(fills) == 1 and fills[0]["price"] == 60_000 and fills[0]["size"] == 100
    assert res.fills["fills"][0]["height"] == res.buy["height"] == res.block["height"]
    assert res.buy["hash"] in {hashlib.sha256(bytes.fromhex(t)).hexdigest() for t in res.block["txs"]}
    assert res.book["asks"] == [] and res.book["bids"] == []


def test_demo_cli_table_and_json(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    with fake_devnet(home, nodes=1, traders=0):
        out = CliRunner().invoke(bookchain, ["devnet", "demo", "--home", str(home)])
        assert out.exit_code == 0, out.output
        for text in ("alice's sell", "bob's buy", "BTC/USDC book", "bob's fills", "which holds bob's buy"):
            assert text in out.output
        js = CliRunner().invoke(bookchain, ["devnet", "demo", "--home", str(home), "--json"])
        assert js.exit_code == 0, js.output
        doc = json.loads(js.stdout)
        assert set(doc) == {"node", "market", "sell", "buy", "book", "fills", "block"}


def test_demo_rejection_exits_1(tmp_path: Path) -> None:
    home = tmp_path / "dn"
    with fake_devnet(home, nodes=1, traders=0):
        out = CliRunner().invoke(bookchain, ["devnet", "demo", "--home", str(home), "--size", "5000"])
    # alice's BTC is valued at the genesis initial price, so margin would carry the short
    # sale; what stops it is the BTC pool, which cannot lend what the sale would borrow
    assert out.exit_code == 1 and "POOL_ILLIQUID" in out.output


def test_demo_without_devnet(tmp_path: Path) -> None:
    out = CliRunner().invoke(bookchain, ["devnet", "demo", "--home", str(tmp_path)])
    assert out.exit_code == 1 and "no devnet" in out.output
