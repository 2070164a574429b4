"""``bookchain query``: read chain and exchange state; tables by default, ``--json`` raw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli import render
from cli.context import get_ctx, home_option, json_option, node_option, print_json, translate_errors
from cli.verify import show_account, show_order, show_pools, verify_options
from node.client import Client, as_int
from node.wallet.txbuild import parse_cloid
from node.wallet.units import MAX_CHAIN_INT, Catalog


def _catalog_or_none() -> Catalog | None:
    """Units for the table; a node that cannot answer /markets still gets raw integers."""
    try:
        return get_ctx().catalog()
    except Exception:
        return None


def show(fetch: Callable[[Client], Any], as_json: bool, human: Callable[[Any], None]) -> None:
    answer = translate_errors(lambda: fetch(get_ctx().client()))
    if as_json:
        print_json(answer)
    else:
        human(answer)


def query_command(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    def deco(f: Callable[..., Any]) -> click.Command:
        return query.command(name)(home_option(node_option(json_option(f))))
    return deco


@click.group("query")
def query() -> None:
    """Query a node's RPC (see node/API.md for the JSON shapes)."""


def _height(h: str | None) -> Callable[[Client], int]:
    def resolve(c: Client) -> int:
        if h is None or h == "latest":
            return as_int(c.status()["latest_height"])
        try:
            return int(h)
        except ValueError:
            raise click.BadParameter(f"{h!r} is not a height", param_hint="HEIGHT") from None
    return resolve


@query_command("status")
def q_status(as_json: bool) -> None:
    """Node id, chain id, latest height/hashes, peers, mempool size.

    Example: bookchain query status
    """
    show(lambda c: c.status(), as_json, render.print_status)


@query_command("validators")
def q_validators(as_json: bool) -> None:
    """The validator set and voting powers.

    Example: bookchain query validators --json
    """
    show(lambda c: c.validators(), as_json, render.print_validators)


@query_command("block")
@click.argument("height", required=False, metavar="[HEIGHT|latest]")
def q_block(height: str | None, as_json: bool) -> None:
    """The block at HEIGHT (default latest): header, tx hashes, certificate.

    Example: bookchain query block 42
    """
    show(lambda c: c.block(_height(height)(c)), as_json, render.print_block)


@query_command("evidence")
@click.option("--height", default=None, type=click.IntRange(1), help="Only the evidence block HEIGHT committed.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="At most this many pieces.")
def q_evidence(height: int | None, limit: int, as_json: bool) -> None:
    """Equivocation evidence: validators that signed two conflicting votes, as committed in
    blocks (newest first), and what the node holds that no block has committed yet.
    Evidence is recorded, not punished: validators hold no stake to slash.

    Example: bookchain query evidence --height 12
    """
    show(lambda c: c.evidence(height, limit), as_json, render.print_evidence)


@query_command("block-results")
@click.argument("height", required=False, metavar="[HEIGHT|latest]")
def q_block_results(height: str | None, as_json: bool) -> None:
    """Receipts, events and app hash after applying the block at HEIGHT (default latest).

    Example: bookchain query block-results 42 --json
    """
    show(lambda c: c.block_results(_height(height)(c)), as_json,
         lambda a: render.print_block_results(a, _catalog_or_none()))


@query_command("tx")
@click.argument("tx_hash", metavar="HASH")
def q_tx(tx_hash: str, as_json: bool) -> None:
    """A committed transaction by its hash (hex): height, index and receipt.

    Example: bookchain query tx 3f9a...c1
    """
    show(lambda c: c.tx(tx_hash), as_json, lambda a: render.print_receipt(a, _catalog_or_none()))


@query_command("book")
@click.argument("market")
@click.option("--depth", default=20, show_default=True, type=click.IntRange(1, 500), help="Price levels per side (the node serves at most 500).")
def q_book(market: str, depth: int, as_json: bool) -> None:
    """The order book of MARKET (symbol like BTC/USDC, or id), best prices first.

    Example: bookchain query book BTC-PERP --depth 10
    """
    show(lambda c: c.book(market, depth), as_json, lambda a: render.print_book(a, _catalog_or_none()))


@query_command("account")
@click.argument("who", metavar="ADDR|KEYNAME")
@verify_options
def q_account(who: str, verify: bool, genesis_file: str | None, as_json: bool) -> None:
    """Balances, positions, open orders and margin of an address or a local key.
    With --verify: the account's proven record (balances and positions) at the newest
    certified height, checked against the genesis you trust.

    \b
    Examples:
      bookchain query account alice
      bookchain query account alice --verify
    """
    address = get_ctx().address(who)
    if verify:
        show_account(address, genesis_file, as_json)
        return
    show(lambda c: c.account(address), as_json, lambda a: render.print_account(a, _catalog_or_none()))


@query_command("orders")
@click.argument("who", metavar="ADDR|KEYNAME")
@click.option("--history", "finished", is_flag=True, help="Finished orders (filled, cancelled, expired) instead of open ones.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="With --history: newest orders to show.")
@click.option("--before", default=None, type=click.IntRange(1, MAX_CHAIN_INT), metavar="HEIGHT",
              help="With --history: only orders finished below this height (paging).")
def q_orders(who: str, finished: bool, limit: int, before: int | None, as_json: bool) -> None:
    """Open orders of an address or a local key; with --history, its finished orders
    newest first with their final status (kept as long as the node keeps blocks).

    \b
    Examples:
      bookchain query orders alice
      bookchain query orders alice --history --limit 20
    """
    address = get_ctx().address(who)
    if finished:
        show(lambda c: c.order_history(address, limit, before), as_json,
             lambda a: render.print_order_history(a, _catalog_or_none()))
        return
    show(lambda c: c.orders(address), as_json, lambda a: render.print_orders(a, _catalog_or_none()))


_KINDS = ("fill", "cancel", "deposit", "withdraw", "transfer", "borrow", "repay", "funding_payment",
          "liquidation", "adl", "triggered", "dead_man", "position_settled", "interest")


@query_command("history")
@click.argument("who", metavar="ADDR|KEYNAME")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(_KINDS), help="Only these kinds (repeatable).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Entries per page.")
@click.option("--before", default=None, metavar="HEIGHT:SEQ", help="Continue from a previous page's cursor.")
@click.option("--start", default=None, type=click.IntRange(0, MAX_CHAIN_INT), metavar="MS", help="Not before this time (ms since the epoch).")
@click.option("--end", default=None, type=click.IntRange(0, MAX_CHAIN_INT), metavar="MS", help="Not after this time (ms since the epoch).")
def q_history(who: str, kinds: tuple[str, ...], limit: int, before: str | None, start: int | None,
              end: int | None, as_json: bool) -> None:
    """An account's history newest first: fills, cancels, deposits, withdrawals, transfers,
    borrows, repays, funding payments, liquidations, ADL, triggered stops, dead-man switches,
    settled futures and hourly interest earned or paid per asset. Kept as long as the node
    keeps blocks.

    \b
    Examples:
      bookchain query history alice
      bookchain query history 0x1234...abcd --kind deposit --kind withdraw
      bookchain query history alice --before 1200:3
      bookchain query history alice --kind interest
    """
    address = get_ctx().address(who)
    show(lambda c: c.history(address, limit, before, ",".join(kinds) or None, start, end), as_json,
         lambda a: render.print_history(a, _catalog_or_none()))


@query_command("candles")
@click.argument("market")
@click.option("--interval", default="1m", show_default=True, type=click.Choice(["1m", "5m", "15m", "1h", "4h", "1d"]),
              help="Candle length.")
@click.option("--start", default=None, type=click.IntRange(0, MAX_CHAIN_INT), metavar="MS", help="First candle start (ms since the epoch).")
@click.option("--end", default=None, type=click.IntRange(0, MAX_CHAIN_INT), metavar="MS", help="Last candle start (ms since the epoch).")
@click.option("--limit", default=60, show_default=True, type=click.IntRange(1, 5000), help="At most this many candles (the latest without --start).")
def q_candles(market: str, interval: str, start: int | None, end: int | None, limit: int, as_json: bool) -> None:
    """OHLCV candles of MARKET (symbol or id) built from its fills, oldest first.

    \b
    Examples:
      bookchain query candles BTC/USDC
      bookchain query candles BTC-PERP --interval 1h --limit 24 --json
    """
    show(lambda c: c.candles(market, interval, start, end, limit), as_json,
         lambda a: render.print_candles(a, _catalog_or_none()))


@query_command("order")
@click.option("--oid", default=None, type=click.IntRange(1, MAX_CHAIN_INT), help="Order id from the placement receipt.")
@click.option("--cloid", default=None, metavar="ID", help="Client order id given at placement (hex or text); needs --owner.")
@click.option("--owner", default=None, metavar="ADDR|KEYNAME", help="Whose client order id --cloid is.")
@verify_options
def q_order(oid: int | None, cloid: str | None, owner: str | None, verify: bool, genesis_file: str | None,
            as_json: bool) -> None:
    """What became of one order: open, filled, cancelled (and why), triggered or expired.
    With --verify (--oid only): whether the order rests in the book or waits as a trigger,
    proven at the newest certified height (else proven not open).

    \b
    Examples:
      bookchain query order --oid 42
      bookchain query order --oid 42 --verify
      bookchain query order --cloid my-order-1 --owner bob
    """
    if (oid is None) == (cloid is None):
        raise click.UsageError("name the order with exactly one of --oid and --cloid")
    if verify:
        if oid is None:
            raise click.UsageError("--verify needs --oid (the state holds orders by id)")
        show_order(oid, genesis_file, as_json)
        return
    if cloid is not None and owner is None:
        raise click.UsageError("--cloid needs --owner (a client order id is unique per account)")
    if oid is not None:
        show(lambda c: c.order_status(oid=oid), as_json, lambda a: render.print_order_status(a, _catalog_or_none()))
        return
    assert cloid is not None and owner is not None
    address, raw_cloid = get_ctx().address(owner), translate_errors(lambda: parse_cloid(cloid))
    show(lambda c: c.order_status(address=address, cloid=raw_cloid), as_json,
         lambda a: render.print_order_status(a, _catalog_or_none()))


@query_command("triggers")
@click.argument("who", metavar="ADDR|KEYNAME")
def q_triggers(who: str, as_json: bool) -> None:
    """Waiting trigger orders (stop / take-profit) of an address or a local key.

    Example: bookchain query triggers bob
    """
    address = get_ctx().address(who)
    show(lambda c: c.triggers(address), as_json, lambda a: render.print_triggers(a, _catalog_or_none()))


@query_command("fills")
@click.argument("who", metavar="ADDR|KEYNAME")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="Newest fills to show (at most 1000).")
def q_fills(who: str, limit: int, as_json: bool) -> None:
    """Recent fills (newest first) of an address or a local key.

    Example: bookchain query fills alice --limit 20
    """
    address = get_ctx().address(who)
    show(lambda c: c.fills(address, limit), as_json, lambda a: render.print_fills(a, _catalog_or_none()))


@query_command("markets")
def q_markets(as_json: bool) -> None:
    """Markets with tick and lot sizes in human units.

    Example: bookchain query markets
    """
    show(lambda c: c.markets(), as_json, lambda a: render.print_markets(a, _catalog_or_none()))


@query_command("pools")
@verify_options
def q_pools(verify: bool, genesis_file: str | None, as_json: bool) -> None:
    """Lending pools: supplied, borrowed, available, utilization and its cap, borrow and supply rates a year.
    With --verify: each pool's proven record (supplied, borrowed, custody, rate, oracle price)
    at the newest certified height.

    \b
    Examples:
      bookchain query pools
      bookchain query pools --verify
    """
    if verify:
        show_pools(genesis_file, as_json)
        return
    show(lambda c: c.get("/pools"), as_json, lambda a: render.print_pools(a, _catalog_or_none()))


@query_command("funding")
def q_funding(as_json: bool) -> None:
    """Per market: index, mark and last prices, funding index (quote per base unit), average premium,
    next funding time.

    Example: bookchain query funding
    """
    show(lambda c: c.get("/funding"), as_json, lambda a: render.print_funding(a, _catalog_or_none()))


@query_command("oracle")
def q_oracle(as_json: bool) -> None:
    """Oracle prices per asset (in the collateral asset), when they were set, and how many fresh
    validator submissions there are.

    Example: bookchain query oracle --json
    """
    show(lambda c: c.get("/oracle"), as_json, lambda a: render.print_oracle(a, _catalog_or_none()))
