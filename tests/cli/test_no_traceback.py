"""Every command, fed absurd values, answers with a message and an exit code of 0-4:
never a Python traceback.

Each case is a command line with one slot ``{}``; every absurd value goes into every slot.
The fake node executes what passes the CLI's checks, so rejections come back as receipts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import bookchain
from tests.cli.conftest import Env

ABSURD = [
    "1e30", "-1", "0", "NaN", "inf", "-inf", "", " ", "1e999999999", "-0", "0.000000000000000000001",
    "99999999999999999999999", "9" * 400, "0xzz", "0x" + "g" * 40, "0x" + "ab" * 19, "0x" + "ab" * 20 + "00",
    "DOGE/XYZ", "nobody", "💥", "--", "-h-", "1,5", "1_000", "null", "[]", "{}", "../../etc/passwd", "a" * 300,
]

# {} is the slot; the rest of the command line is valid, so each absurd value is tested alone
CASES = [
    "tx order {} buy --size 0.01 --price 60000 --key alice",
    "tx order BTC/USDC {} --size 0.01 --price 60000 --key alice",
    "tx order BTC/USDC buy --size {} --price 60000 --key alice",
    "tx order BTC/USDC buy --size 0.01 --price {} --key alice",
    "tx order BTC/USDC buy --size {} --price 60000 --key alice --raw",
    "tx order BTC/USDC buy --size 1 --price {} --key alice --raw",
    "tx order BTC/USDC buy --size 0.01 --price 60000 --key alice --cloid {}",
    "tx order BTC/USDC buy --size 0.01 --price 60000 --key {}",
    "tx order BTC-PERP sell --size {} --price 60000 --key alice --reduce-only",
    "tx cancel BTC/USDC --oid {} --key alice",
    "tx cancel BTC/USDC --cloid {} --key alice",
    "tx cancel {} --oid 1 --key alice",
    "tx cancel-all {} --key alice",
    "tx modify BTC/USDC --oid {} --size 0.01 --key alice",
    "tx modify BTC/USDC --oid 1 --size {} --price 60000 --key alice",
    "tx modify BTC/USDC --oid 1 --size 0.01 --price {} --key alice",
    "tx deposit {} USDC 10",
    "tx deposit alice {} 10",
    "tx deposit alice USDC {}",
    "tx deposit alice USDC {} --raw",
    "tx withdraw USDC {} --key alice",
    "tx withdraw {} 1 --key alice",
    "tx withdraw USDC 1 --key alice --dest {}",
    "tx borrow USDC {} --key alice",
    "tx borrow {} 1 --key alice",
    "tx repay USDC {} --key alice",
    "tx repay BTC {} --key alice --raw",
    "tx lend {} on --key alice",
    "tx set-unwind {} --key alice",
    "tx batch {} --key alice",
    "tx order BTC/USDC buy --size 0.01 --price 60000 --key alice --chain-id {}",
    "query block {}",
    "query block-results {}",
    "query tx {}",
    "query book {}",
    "query book BTC/USDC --depth {}",
    "query account {}",
    "query orders {}",
    "query fills {}",
    "query fills alice --limit {}",
    "keys show {}",
    "keys new {}",
    "keys import {} " + "11" * 32,
    "keys import k1 {}",
    "keys export {}",
    "--timeout {} query status",
    "--node {} query status",
    # a devnet home that does not exist (and cannot be created: /proc)
    "devnet status --home {}",
    "devnet logs {} --home /proc/no-devnet",
    "devnet load --home /proc/no-devnet --tps {}",
    "devnet load --home /proc/no-devnet --seconds {}",
    "devnet demo --home /proc/no-devnet --price {}",
    "devnet down --home /proc/no-devnet --timeout {}",
    "devnet up --home /proc/no-devnet --timeout {}",
    "devnet up --home /proc/no-devnet --nodes {}",
    "node start --home {}",
]

BATCHES = [
    '[{"type":"order","market":"BTC/USDC","side":"buy","size":"1e30","price":"1"}]',
    '[{"type":"cancel","market":"BTC/USDC","oid":99999999999999999999999}]',
    '[{"type":"cancel","market":"BTC/USDC","oid":-1}]',
    '[{"type":"modify","market":"BTC/USDC","oid":1,"price":"NaN","size":"1"}]',
    '[{"type":"order","market":1e400,"side":null,"size":[],"price":{}}]',
    '[{"type":"nope"}]', "[1]", "[]", '{"type":"order"}', "not json", "[" * 5000,
]


def check(res: Result, line: str) -> None:
    shown = f"bookchain {line!r}: exit {res.exit_code}\n{res.output}"
    assert res.exception is None or isinstance(res.exception, SystemExit), shown + repr(res.exception)
    assert "Traceback" not in res.output, shown
    assert "unexpected error" not in res.output, shown  # the CLI's last-resort net caught a bug
    assert res.exit_code in (0, 1, 2, 3, 4), shown


def invoke(env: Env, args: list[str]) -> Result:
    runner = CliRunner()
    return runner.invoke(bookchain, args, env={"BOOKCHAIN_HOME": str(env.home), "BOOKCHAIN_NODE": env.node.url})


@pytest.mark.parametrize("case", CASES)
def test_absurd_values_never_trace(env: Env, case: str) -> None:
    head, tail = case.split("{}")
    for value in ABSURD:
        args = [*head.split(), value, *tail.split()]
        check(invoke(env, args), " ".join(args))


@pytest.mark.parametrize("actions", BATCHES)
def test_absurd_batches_never_trace(env: Env, actions: str) -> None:
    res = invoke(env, ["tx", "batch", actions, "--key", "alice"])
    check(res, actions[:60])
    assert res.exit_code in (1, 2)


def test_out_of_range_numbers_are_usage_errors_in_user_units(env: Env) -> None:
    cases = {
        ("tx", "order", "BTC/USDC", "buy", "--size", "1e30", "--price", "60000", "--key", "alice"): "BTC/USDC size",
        ("tx", "order", "BTC/USDC", "buy", "--size", "1", "--price", "1e30", "--key", "alice"): "BTC/USDC price",
        ("tx", "borrow", "USDC", "1e19", "--key", "alice"): "USDC amount",
        ("tx", "deposit", "alice", "USDC", "1e30"): "USDC amount",
    }
    for args, what in cases.items():
        res = env.run(*args)
        assert res.exit_code == 2, res.output
        assert what in res.output and "out of range" in res.output and "between 0 and" in res.output
    res = env.run("tx", "cancel", "BTC/USDC", "--oid", "99999999999999999999999", "--key", "alice")
    assert res.exit_code == 2 and "0<=x<=9223372036854775807" in res.output.replace(" ", "")


def test_messages_say_what_is_expected(env: Env, tmp_path: Path) -> None:
    res = env.run("query", "account", "0xzz")
    assert res.exit_code == 2 and "0x followed by 40 hex digits" in res.output
    for i in range(12):
        env.keys.create(f"trader{i}")
    res = env.run("tx", "order", "BTC/USDC", "buy", "--size", "0.01", "--price", "60000", "--key", "trader1x")
    assert res.exit_code == 2 and "unknown key 'trader1x'" in res.output and "bookchain keys list" in res.output
    assert "trader1" in res.output and res.output.count("trader") <= 5  # a few close names, not all 16
    res = env.run("tx", "batch", "not json", "--key", "alice")
    assert res.exit_code == 2 and "neither a file nor valid JSON" in res.output
    res = env.run("--node", env.node.url.removeprefix("http://"), "query", "status")
    assert res.exit_code == 0, res.output
    assert "4 replay" in env.run("--help").output.replace("\n", " ").replace("  ", " ").replace("  ", " ")


def test_replay_errors_are_exit_codes(env: Env, tmp_path: Path, dead_url: str) -> None:
    res = invoke(env, ["replay", "--from", dead_url, "--home", str(tmp_path / "new")])
    check(res, "replay dead")
    assert res.exit_code == 3
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    res = invoke(env, ["replay", "--from", env.node.url, "--home", str(used)])
    check(res, "replay used")
    assert res.exit_code == 2 and "not an empty directory" in res.output


def test_modify_defaults_to_the_orders_price(env: Env) -> None:
    placed = env.json("tx", "order", "BTC/USDC", "buy", "--size", "0.02", "--price", "50000", "--key", "bob")
    oid = placed["receipt"]["results"][0]["oid"]  # type: ignore[index]

    def the_order() -> dict[str, int]:
        orders = env.json("query", "orders", "bob")["orders"]  # type: ignore[index]
        (o,) = [x for x in orders if x["oid"] == oid]
        return o  # type: ignore[no-any-return]

    before = the_order()
    res = env.run("tx", "modify", "BTC/USDC", "--oid", str(oid), "--size", "0.01", "--key", "bob")
    assert res.exit_code == 0, res.output
    after = the_order()
    assert after["price"] == before["price"] and after["size"] == before["size"] // 2
    res = env.run("tx", "modify", "BTC/USDC", "--oid", "424242", "--size", "0.01", "--key", "bob")
    assert res.exit_code == 1 and "no open order" in res.output
    # a batch's modify without a price keeps the order's too
    items = f'[{{"type":"modify","market":"BTC/USDC","oid":{oid},"size":"0.005"}}]'
    res = env.run("tx", "batch", items, "--key", "bob")
    assert res.exit_code == 0, res.output
    last = the_order()
    assert last["price"] == before["price"] and last["size"] == before["size"] // 4


def test_devnet_status_when_not_running(tmp_path: Path) -> None:
    res = CliRunner().invoke(bookchain, ["devnet", "status", "--home", str(tmp_path / "none")])
    check(res, "devnet status")
    from devnet.genesis import DevnetSpec, create_devnet

    create_devnet(tmp_path / "made", DevnetSpec(nodes=2, traders=0))  # created, never started (as after `down`)
    res = CliRunner().invoke(bookchain, ["devnet", "status", "--home", str(tmp_path / "made")])
    check(res, "devnet status down")
    assert "is not running" in res.output and "bookchain devnet up" in res.output and "None" not in res.output
    for sub in ("status", "down", "logs node0"):
        res = CliRunner().invoke(bookchain, ["devnet", *sub.split(), "--home", "\x00bad"])
        check(res, f"devnet {sub} NUL")
