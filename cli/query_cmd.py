"""``bookchain query``: read chain and exchange state; tables by default, ``--json`` raw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from cli import render
from cli.context import get_ctx, home_option, json_option, node_option, print_json, translate_errors
from node.client import Client, as_int
from node.wallet.units import Catalog


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
    """Node id, chain id, latest height/hashes, peers, mempool size."""
    show(lambda c: c.status(), as_json, render.print_status)


@query_command("validators")
def q_validators(as_json: bool) -> None:
    """The validator set and voting powers."""
    show(lambda c: c.validators(), as_json, render.print_validators)


@query_command("block")
@click.argument("height", required=False, metavar="[HEIGHT|latest]")
def q_block(height: str | None, as_json: bool) -> None:
    """The block at HEIGHT (default latest): header, tx hashes, certificate."""
    show(lambda c: c.block(_height(height)(c)), as_json, render.print_block)


@query_command("block-results")
@click.argument("height", required=False, metavar="[HEIGHT|latest]")
def q_block_results(height: str | None, as_json: bool) -> None:
    """Receipts, events and app hash after applying the block at HEIGHT (default latest)."""
    show(lambda c: c.block_results(_height(height)(c)), as_json,
         lambda a: render.print_block_results(a, _catalog_or_none()))


@query_command("tx")
@click.argument("tx_hash", metavar="HASH")
def q_tx(tx_hash: str, as_json: bool) -> None:
    """A committed transaction by its hash (hex): height, index and receipt."""
    show(lambda c: c.tx(tx_hash), as_json, lambda a: render.print_receipt(a, _catalog_or_none()))


@query_command("book")
@click.argument("market")
@click.option("--depth", default=20, show_default=True, type=click.IntRange(1, 500), help="Price levels per side (the node serves at most 500).")
def q_book(market: str, depth: int, as_json: bool) -> None:
    """The order book of MARKET (symbol like BTC/USDC, or id), best prices first."""
    show(lambda c: c.book(market, depth), as_json, lambda a: render.print_book(a, _catalog_or_none()))


@query_command("account")
@click.argument("who", metavar="ADDR|KEYNAME")
def q_account(who: str, as_json: bool) -> None:
    """Balances, positions, open orders and margin of an address or a local key."""
    address = get_ctx().address(who)
    show(lambda c: c.account(address), as_json, lambda a: render.print_account(a, _catalog_or_none()))


@query_command("orders")
@click.argument("who", metavar="ADDR|KEYNAME")
def q_orders(who: str, as_json: bool) -> None:
    """Open orders of an address or a local key."""
    address = get_ctx().address(who)
    show(lambda c: c.orders(address), as_json, lambda a: render.print_orders(a, _catalog_or_none()))


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
    """Recent fills (newest first) of an address or a local key."""
    address = get_ctx().address(who)
    show(lambda c: c.fills(address, limit), as_json, lambda a: render.print_fills(a, _catalog_or_none()))


@query_command("markets")
def q_markets(as_json: bool) -> None:
    """Markets with tick and lot sizes in human units."""
    show(lambda c: c.markets(), as_json, lambda a: render.print_markets(a, _catalog_or_none()))


@query_command("pools")
def q_pools(as_json: bool) -> None:
    """Lending pools: supplied, borrowed, available, utilization and its cap, borrow and supply rates a year."""
    show(lambda c: c.get("/pools"), as_json, lambda a: render.print_pools(a, _catalog_or_none()))


@query_command("funding")
def q_funding(as_json: bool) -> None:
    """Per market: index, mark and last prices, funding index (quote per base unit), average premium,
    next funding time."""
    show(lambda c: c.get("/funding"), as_json, lambda a: render.print_funding(a, _catalog_or_none()))


@query_command("oracle")
def q_oracle(as_json: bool) -> None:
    """Oracle prices per asset (in the collateral asset), when they were set, and how many fresh
    validator submissions there are."""
    show(lambda c: c.get("/oracle"), as_json, lambda a: render.print_oracle(a, _catalog_or_none()))
