"""``bookchain tx``: sign an action with a named key, submit it, print the receipt.

Every subcommand is the same three steps, kept in ``submit``: build the action from human
input (node/wallet/txbuild.py, using the node's /markets and /assets), sign it with a millisecond
nonce for the node's chain id, and broadcast it: by default through
``/broadcast_tx_commit`` so the receipt (fills, oid, status, error code) is printed; with
``--async`` through ``/broadcast_tx_sync``, which only reports the mempool check.

A secp256k1 (``--eth``) key cannot sign a native transaction; ``submit`` writes the same
action as the Hyperliquid action the chain maps back onto it (node/wallet/hlbuild.py) and
signs that, so every command that has an equivalent works with either kind of key, and one
that has none says so (``NO_HYPERLIQUID_EQUIVALENT``, exit 2) before anything is sent.

Lending (``lend``, ``borrow``, ``repay``) will be three more subcommands here once the
state machine has those actions: a builder in node/wallet/txbuild.py plus a ``submit`` call.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from cli.context import (
    Rejected,
    get_ctx,
    home_option,
    json_option,
    node_option,
    print_json,
    translate_errors,
)
from cli.messages import humanize_answer
from cli.render import print_receipt
from node.client import RpcError
from node.wallet import hlbuild, txbuild
from node.wallet.keystore import EthKeyRecord
from node.wallet.nonce import NONCES
from node.wallet.units import MAX_CHAIN_INT, Catalog
from state.account import ISOLATED_PREFIX
from state.agents import sub_account_address
from state.keys import address_from_text
from state.tx import (
    ActAs,
    ApproveAgent,
    Batch,
    CreateSubAccount,
    Deposit,
    Modify,
    PlaceGroup,
    RevokeAgent,
    Tif,
    UpdateLeverage,
    tx_hash,
)

F = TypeVar("F", bound=Callable[..., Any])


def common_options(f: F) -> F:
    """Options every tx subcommand takes (applied bottom-up, shown in this order in --help)."""
    f = json_option(f)
    f = click.option("--expires-after", "expires_after_s", default=None, type=click.IntRange(1, 10**9), metavar="SECONDS",
                     help="Put expires_after = now + SECONDS in the envelope: a block later than that rejects the "
                          "tx (TX_EXPIRED) without using its nonce, and the mempool drops it.")(f)
    f = click.option("--chain-id", default=None, envvar="BOOKCHAIN_CHAIN_ID", metavar="ID",
                     help="Chain id to sign for (default: asked from the node's /status).")(f)
    f = click.option("--timeout-ms", default=10_000, show_default=True, type=click.IntRange(100, 120_000),
                     help="How long the node waits for the commit before answering 504.")(f)
    f = click.option("--async", "is_async", is_flag=True,
                     help="Return after the mempool check (/broadcast_tx_sync) instead of waiting for the block.")(f)
    f = click.option("--account", "sub_account", default=None, metavar="NAME|0xADDR",
                     help="Act for this sub-account of the key's account (its name, or its 0x address).")(f)
    f = node_option(f)
    f = home_option(f)
    return f


def key_option(default: str | None = None) -> Callable[[F], F]:
    help_text = "Name of the signing key in the CLI home"
    help_text += f" (default: {default})." if default else "."
    return click.option("--key", "key_name", required=default is None, default=default, metavar="NAME",
                        help=help_text)


raw_option = click.option("--raw", is_flag=True,
                          help="Take prices in ticks, sizes in lots and amounts in smallest units (integers).")


def catalog() -> Catalog:
    return translate_errors(get_ctx().catalog)  # type: ignore[no-any-return]


def build(fn: Callable[[], Any]) -> Any:
    """Run an action builder, turning bad human input into a usage error (exit 2)."""
    return translate_errors(fn)


def now_ms() -> int:
    """Wall-clock milliseconds: what expiries typed as "in N seconds" count from (block
    times follow the validators' clocks)."""
    return time.time_ns() // 1_000_000


def sub_account_of(key_name: str, account: str) -> bytes:
    """The address of sub-account ``account`` (a name, or an 0x address) of the account the
    key acts for: its own, or, for an agent key, its master's (asked from the node)."""
    ctx = get_ctx()
    if account.lower().startswith("0x"):
        return address_from_text(ctx.address(account))
    rec = ctx.key(key_name)
    links = translate_errors(lambda: ctx.client().account(rec.address_text))
    master = links.get("agent_of") or rec.address_text
    return sub_account_address(address_from_text(master), account)


def submit(action: Any, key_name: str, *, is_async: bool, timeout_ms: int, chain_id: str | None,
           as_json: bool, expires_after_s: int | None = None, sub_account: str | None = None) -> None:
    ctx = get_ctx()
    ctx.set_chain_id(chain_id)
    rec = ctx.key(key_name)
    if sub_account is not None:
        if isinstance(action, (Deposit, ApproveAgent, RevokeAgent, CreateSubAccount)):
            raise click.UsageError("--account does not apply to this command")
        action = ActAs(sub_account_of(key_name, sub_account), action)
    expires_after = now_ms() + expires_after_s * 1000 if expires_after_s is not None else None
    eth_raw = hl_sign(rec, action, expires_after) if isinstance(rec, EthKeyRecord) else None

    def go() -> dict[str, Any]:
        if eth_raw is not None:
            raw = eth_raw
        else:
            assert not isinstance(rec, EthKeyRecord)
            raw = txbuild.sign(rec.key, NONCES.next(rec.key.pubkey), action, ctx.chain_id(),
                               expires_after_ms=expires_after)
        client = ctx.client()
        try:
            if is_async:
                return client.broadcast_tx_sync(raw)
            return client.broadcast_tx_commit(raw, timeout_ms)
        except RpcError as err:
            if err.http_status == 504:
                raise Rejected(f"tx {tx_hash(raw).hex()} was not committed within {timeout_ms} ms; "
                               f"it may still be included: bookchain query tx {tx_hash(raw).hex()}") from None
            raise

    answer: dict[str, Any] = translate_errors(go)
    if as_json:
        print_json(answer)
    else:
        answer = humanize_answer(answer, action, ctx._catalog)
        print_receipt(answer, ctx._catalog, action_markets(action))
    code = answer.get("code")
    if code != 0:
        name = answer.get("name") or (answer.get("receipt") or {}).get("name") or f"code {code}"
        message = answer.get("message") or (answer.get("receipt") or {}).get("message") or ""
        raise Rejected(f"transaction rejected: {name}" + (f": {message}" if message else ""))


def isolated_markets(address: bytes) -> frozenset[int]:
    """The markets ``address`` trades isolated: its sub-accounts named ``isolated:<market>``
    (state/isolated.py), asked from the node."""
    ctx = get_ctx()
    doc = translate_errors(lambda: ctx.client().account("0x" + address.hex()))
    names = [str(x.get("name", "")) for x in doc.get("sub_accounts") or [] if isinstance(x, dict)]
    return frozenset(int(n[len(ISOLATED_PREFIX):]) for n in names
                     if n.startswith(ISOLATED_PREFIX) and n[len(ISOLATED_PREFIX):].isdigit())


_TIFS = {"gtc": Tif.GTC, "ioc": Tif.IOC, "alo": Tif.ALO}


def resting_orders(address: bytes) -> tuple[hlbuild.RestingOrder, ...]:
    """The open orders of ``address`` (or of its master, for an agent key), from the node:
    what a Hyperliquid modify restates."""
    ctx = get_ctx()
    client = ctx.client()
    text = "0x" + address.hex()
    master = translate_errors(lambda: client.account(text)).get("agent_of")
    doc = translate_errors(lambda: client.orders(master or text))
    out = []
    for o in doc.get("orders") or []:
        if isinstance(o, dict) and o.get("tif") in _TIFS:
            cloid = o.get("cloid")
            out.append(hlbuild.RestingOrder(int(o["market"]), int(o["oid"]), o.get("side") == "buy", _TIFS[o["tif"]],
                                            bool(o.get("reduce_only")), bytes.fromhex(cloid) if cloid else None))
    return tuple(out)


def hl_sign(rec: EthKeyRecord, action: Any, expires_after: int | None) -> bytes:
    """``action`` signed by a secp256k1 key as the Hyperliquid action that stands for it
    (nonce: a millisecond timestamp, as every CLI nonce); a usage error naming the command
    when Hyperliquid has no such action."""
    acting = action.account if isinstance(action, ActAs) else rec.address
    inner = action.action if isinstance(action, ActAs) else action
    isolated = isolated_markets(acting) if isinstance(inner, UpdateLeverage) else frozenset()
    modifies = isinstance(inner, Modify) or (isinstance(inner, Batch) and any(isinstance(a, Modify)
                                                                              for a in inner.actions))
    hc = hlbuild.HlContext(catalog(), rec.address, isolated, resting_orders(acting) if modifies else ())
    nonce = NONCES.next(rec.address)
    try:
        return hlbuild.sign(rec.key, hlbuild.build(hc, action, nonce), nonce, expires_after_ms=expires_after)
    except hlbuild.HlBuildError as err:
        command = click.get_current_context().command_path
        raise click.UsageError(f"{err}. `{command}` cannot be signed by {rec.name!r}, a secp256k1 key; "
                               "sign it with an ed25519 key (bookchain keys new NAME)") from None


def action_markets(action: Any) -> list[int | None]:
    """The market of each action, in receipt result order."""
    if isinstance(action, ActAs):
        action = action.action
    if isinstance(action, PlaceGroup):
        items: Any = ((action.parent,) if action.parent is not None else ()) + action.children
    else:
        items = action.actions if isinstance(action, Batch) else (action,)
    return [getattr(a, "market", None) for a in items]


@click.group("tx")
def tx() -> None:
    """Sign and submit transactions; prints the receipt, exits 1 if the chain rejects it."""


@tx.command("deposit")
@click.argument("to", metavar="TO")
@click.argument("asset")
@click.argument("amount")
@key_option("bridge")
@raw_option
@common_options
def deposit(to: str, asset: str, amount: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Credit AMOUNT of ASSET to TO (an 0x address or a key name). Signed by the bridge key.

    Example: bookchain tx deposit alice USDC 1000.5
    """
    ctx = get_ctx()
    address = address_from_text(ctx.address(to))
    action = build(lambda: txbuild.deposit_action(catalog(), address, asset, amount, raw))
    submit(action, key_name, **opts)


@tx.command("withdraw")
@click.argument("asset")
@click.argument("amount")
@click.option("--dest", "destination", default=None, metavar="ADDR",
              help="Destination on the other side of the bridge: 0x-hex bytes or text (default: your address).")
@key_option()
@raw_option
@common_options
def withdraw(asset: str, amount: str, destination: str | None, key_name: str, raw: bool, **opts: Any) -> None:
    """Withdraw AMOUNT of ASSET from the free balance of --key.

    Example: bookchain tx withdraw USDC 250 --key alice
    """
    ctx = get_ctx()
    dest = build(lambda: txbuild.parse_destination(destination)) if destination else ctx.key(key_name).address
    action = build(lambda: txbuild.withdraw_action(catalog(), asset, amount, dest, raw))
    submit(action, key_name, **opts)


@tx.command("transfer")
@click.argument("to", metavar="TO")
@click.argument("asset")
@click.argument("amount")
@key_option()
@raw_option
@common_options
def transfer(to: str, asset: str, amount: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Send AMOUNT of ASSET from the free balance of --key to TO: an 0x address, a key name,
    or sub:NAME, the key's sub-account NAME.

    Checked as a withdrawal: the sender must hold the amount and stay above initial margin.
    A sub-account sends back to its master with --account NAME.

    \b
    Examples:
      bookchain tx transfer carol USDC 250 --key alice
      bookchain tx transfer sub:hedge USDC 1000 --key alice
      bookchain tx transfer alice USDC 500 --key alice --account hedge
    """
    ctx = get_ctx()
    if to.startswith("sub:"):
        address = sub_account_of(key_name, to[4:])
    else:
        address = address_from_text(ctx.address(to))
    action = build(lambda: txbuild.transfer_action(catalog(), address, asset, amount, raw))
    submit(action, key_name, **opts)


@tx.command("subaccount")
@click.argument("name")
@key_option()
@common_options
def subaccount(name: str, key_name: str, **opts: Any) -> None:
    """Create the sub-account NAME of --key's account: a full account with its own margin.

    Fund it with `tx transfer`, then act for it with `--account NAME` on any tx command.

    \b
    Example:
      bookchain tx subaccount hedge --key alice
      bookchain tx transfer $(bookchain query account alice --json | jq -r '.sub_accounts[0].address') USDC 1000 --key alice
      bookchain tx order BTC-PERP sell --size 0.1 --price 60000 --key alice --account hedge
    """
    submit(CreateSubAccount(name), key_name, **opts)


@tx.command("margin-mode")
@click.argument("market")
@click.argument("mode", type=click.Choice(["isolated", "cross"], case_sensitive=False))
@key_option()
@common_options
def margin_mode(market: str, mode: str, key_name: str, **opts: Any) -> None:
    """Trade a perp or future MARKET isolated (its own margin) or cross (the portfolio, the
    default). Switch with no position or open order on the market.

    \b
    Example:
      bookchain tx margin-mode BTC-PERP isolated --key bob
      bookchain tx isolated-margin BTC-PERP 500 --key bob
    """
    action = build(lambda: txbuild.margin_mode_action(catalog(), market, mode))
    submit(action, key_name, **opts)


@tx.command("isolated-margin", context_settings={"ignore_unknown_options": True})
@click.argument("market")
@click.argument("amount")
@key_option()
@raw_option
@common_options
def isolated_margin(market: str, amount: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Move AMOUNT of USDC into an isolated MARKET's margin; a negative AMOUNT moves it out
    (what stays must cover the position's initial margin).

    \b
    Examples:
      bookchain tx isolated-margin BTC-PERP 500 --key bob
      bookchain tx isolated-margin BTC-PERP -200 --key bob
    """
    action = build(lambda: txbuild.isolated_margin_action(catalog(), market, amount, raw))
    submit(action, key_name, **opts)


@tx.command("leverage")
@click.argument("market")
@click.argument("leverage", metavar="LEVERAGE")
@key_option()
@common_options
def leverage(market: str, leverage: str, key_name: str, **opts: Any) -> None:
    """Set the leverage --key allows itself on a perp or future MARKET: 1 up to the market's
    maximum (shown by `query markets`), or `max` to restore it.

    Lower leverage raises the initial margin the market's positions and orders need; it
    never lowers what the portfolio scenarios ask. Lowering it with a position open must
    leave the account above initial margin.

    \b
    Examples:
      bookchain tx leverage BTC-PERP 5 --key bob
      bookchain tx leverage BTC-PERP max --key bob
    """
    action = build(lambda: txbuild.leverage_action(catalog(), market, leverage))
    submit(action, key_name, **opts)


def market_side_options(f: F) -> F:
    """MARKET and SIDE positionally (``tx order BTC/USDC buy``) or as ``--market``/``--side``."""
    f = click.option("--side", "side_opt", default=None, type=click.Choice(["buy", "sell"], case_sensitive=False),
                     help="Alternative to the SIDE argument.")(f)
    f = click.option("--market", "market_opt", default=None, metavar="MARKET",
                     help="Alternative to the MARKET argument.")(f)
    f = click.argument("side", required=False, metavar="[SIDE]")(f)
    f = click.argument("market", required=False, metavar="[MARKET]")(f)
    return f


def pick(positional: str | None, option: str | None, name: str) -> str:
    if positional and option and positional.lower() != option.lower():
        raise click.UsageError(f"{name.upper()} given twice: {positional!r} and --{name} {option!r}")
    value = positional or option
    if not value:
        raise click.UsageError(f"missing {name.upper()}: give it as an argument or with --{name}")
    return value


def market_and_side(market: str | None, side: str | None, market_opt: str | None,
                    side_opt: str | None) -> tuple[str, str]:
    # `tx order --market BTC/USDC sell`: the lone positional is the side, not the market
    if market_opt and market and not side and market.lower() in txbuild.SIDES:
        market, side = None, market
    chosen = pick(side, side_opt, "side").lower()
    if chosen not in txbuild.SIDES:
        raise click.BadParameter(f"{chosen!r} is not buy or sell", param_hint="SIDE")
    return pick(market, market_opt, "market"), chosen


@tx.command("order")
@market_side_options
@click.option("--size", required=True, metavar="SIZE", help="Size in base units, e.g. 0.25 (lots with --raw).")
@click.option("--price", required=True, metavar="PRICE", help="Limit price in quote per base, e.g. 60000.5 (ticks with --raw).")
@click.option("--tif", type=click.Choice(["gtc", "ioc", "alo"], case_sensitive=False), default="gtc", show_default=True,
              help="gtc rests the remainder, ioc cancels it, alo (post-only) is rejected if it would cross.")
@click.option("--reduce-only", is_flag=True, help="Perps only: may only shrink the current position.")
@click.option("--cloid", default=None, metavar="ID", help="Client order id: 32 hex digits, or any text (hashed to 16 bytes).")
@click.option("--expires-in", "expires_in", default=None, type=click.IntRange(1, 10**9), metavar="SECONDS",
              help="Good-til-time: the order is cancelled at the first block more than SECONDS from now.")
@click.option("--expires-at", "expires_at", default=None, type=click.IntRange(0, MAX_CHAIN_INT), metavar="MS",
              help="Good-til-time with an absolute expiry (unix ms, compared with block times).")
@click.option("--tp", default=None, metavar="PRICE",
              help="Attach a take-profit (market trigger at PRICE) that covers what this order fills.")
@click.option("--sl", default=None, metavar="PRICE",
              help="Attach a stop-loss (market trigger at PRICE) that covers what this order fills.")
@key_option()
@raw_option
@common_options
def order(market: str | None, side: str | None, market_opt: str | None, side_opt: str | None, size: str, price: str,
          tif: str, reduce_only: bool, cloid: str | None, expires_in: int | None, expires_at: int | None,
          tp: str | None, sl: str | None, key_name: str, raw: bool, **opts: Any) -> None:
    """Place a limit order: MARKET is a symbol (BTC/USDC) or id, SIDE is buy or sell.

    \b
    Examples:
      bookchain tx order BTC/USDC buy --size 0.25 --price 60000 --key bob
      bookchain tx order --market BTC/USDC --side sell --size 0.01 --price 60000 --key alice
      bookchain tx order BTC/USDC buy --size 0.1 --price 59000 --expires-in 3600 --key bob
      bookchain tx order BTC-PERP buy --size 0.1 --price 60000 --tp 66000 --sl 57000 --key bob
    """
    mkt, sd = market_and_side(market, side, market_opt, side_opt)
    expiry = build(lambda: txbuild.expiry_ms(now_ms(), expires_in, expires_at))
    action = build(lambda: txbuild.order_action(catalog(), mkt, sd, size, price, tif=tif,
                                                reduce_only=reduce_only, cloid=cloid, raw=raw,
                                                expires_at_ms=expiry))
    if tp is not None or sl is not None:
        parent = action
        action = build(lambda: txbuild.bracket_action(catalog(), parent, tp, sl, raw=raw))
    submit(action, key_name, **opts)


@tx.command("market")
@market_side_options
@click.option("--size", required=True, metavar="SIZE", help="Size in base units, e.g. 0.25 (lots with --raw).")
@click.option("--slippage", default=txbuild.DEFAULT_SLIPPAGE, show_default=True, metavar="FRACTION",
              help="How far past the mark (perps) or oracle price (spot) the order may trade: 0.05 is 5%.")
@click.option("--reduce-only", is_flag=True, help="Perps only: may only shrink the current position.")
@click.option("--cloid", default=None, metavar="ID", help="Client order id: 32 hex digits, or any text (hashed to 16 bytes).")
@key_option()
@raw_option
@common_options
def market_order(market: str | None, side: str | None, market_opt: str | None, side_opt: str | None, size: str,
                 slippage: str, reduce_only: bool, cloid: str | None, key_name: str, raw: bool, **opts: Any) -> None:
    """Buy or sell SIZE now at the best prices on the book, up to --slippage past the mark.

    A market order is an immediate-or-cancel order whose limit is the mark price (a perp's;
    a spot pair's oracle price) plus the slippage for a buy, minus it for a sell, kept inside
    the market's price band. The receipt shows what filled, at what average price, and the
    remainder that was cancelled.

    \b
    Examples:
      bookchain tx market BTC-PERP buy --size 0.1 --key bob
      bookchain tx market ETH/USDC sell --size 2 --slippage 0.01 --key alice
    """
    mkt, sd = market_and_side(market, side, market_opt, side_opt)
    m = build(lambda: catalog().market(mkt))
    rows = translate_errors(lambda: get_ctx().client().markets())["markets"]
    row = next((r for r in rows if int(r["id"]) == m.id), None)
    if row is None:
        raise click.UsageError(f"the node does not list market {mkt}")
    action = build(lambda: txbuild.market_order_action(catalog(), row, sd, size, slippage, reduce_only=reduce_only,
                                                       cloid=cloid, raw=raw))
    submit(action, key_name, **opts)


def _order_ref_options(f: F) -> F:
    f = click.option("--cloid", default=None, metavar="ID", help="Client order id given at placement (hex or text).")(f)
    f = click.option("--oid", default=None, type=click.IntRange(0, MAX_CHAIN_INT), help="Order id from the placement receipt.")(f)
    return f


@tx.command("cancel")
@click.argument("market")
@_order_ref_options
@key_option()
@common_options
def cancel(market: str, oid: int | None, cloid: str | None, key_name: str, **opts: Any) -> None:
    """Cancel one open order on MARKET, named by exactly one of --oid and --cloid.

    Example: bookchain tx cancel BTC/USDC --oid 42 --key bob
    """
    action = build(lambda: txbuild.cancel_action(catalog(), market, oid, cloid))
    submit(action, key_name, **opts)


@tx.command("cancel-all")
@click.argument("market", required=False)
@key_option()
@common_options
def cancel_all(market: str | None, key_name: str, **opts: Any) -> None:
    """Cancel every open order of --key on MARKET, or on all markets if MARKET is omitted.

    Example: bookchain tx cancel-all BTC-PERP --key bob
    """
    action = build(lambda: txbuild.cancel_all_action(catalog(), market))
    submit(action, key_name, **opts)


@tx.command("modify")
@click.argument("market")
@_order_ref_options
@click.option("--size", required=True, metavar="SIZE", help="New size in base units (lots with --raw).")
@click.option("--price", default=None, metavar="PRICE",
              help="New price (ticks with --raw); default: the order's current price, asked from the node.")
@key_option()
@raw_option
@common_options
def modify(market: str, oid: int | None, cloid: str | None, size: str, price: str | None, key_name: str, raw: bool,
           **opts: Any) -> None:
    """Cancel-replace an open order; it keeps its queue place only if the price is unchanged and the size shrinks.

    Example (shrink order 7, same price): bookchain tx modify BTC/USDC --oid 7 --size 0.05 --key bob
    """
    if price is None:
        ticks = current_price_ticks(market, oid, cloid, key_name)
        action = build(lambda: txbuild.modify_action(catalog(), market, ticks, size, oid, cloid, raw,
                                                     price_is_ticks=True))
    else:
        action = build(lambda: txbuild.modify_action(catalog(), market, price, size, oid, cloid, raw))
    submit(action, key_name, **opts)


def _trigger_command(name: str, kind: str, what: str, example: str) -> None:
    @tx.command(name, help=f"""Place a {what} trigger order on MARKET: it waits outside the book and,
when the reference price (a perp's mark, a spot market's index) reaches --trigger, enters
the book with the same order id: a market order (IOC, 5% slippage limit) unless --limit.

\b
Example: {example}""")
    @click.argument("market")
    @click.argument("side", type=click.Choice(["buy", "sell"], case_sensitive=False))
    @click.argument("size")
    @click.option("--trigger", required=True, metavar="PRICE", help="Trigger price (ticks with --raw).")
    @click.option("--limit", default=None, metavar="PRICE", help="Limit price once triggered; default: a market order.")
    @click.option("--reduce-only", is_flag=True, help="Perps only: may only shrink the position (no margin counted).")
    @click.option("--cloid", default=None, metavar="ID", help="Client order id (hex or text).")
    @key_option()
    @raw_option
    @common_options
    def cmd(market: str, side: str, size: str, trigger: str, limit: str | None, reduce_only: bool, cloid: str | None,
            key_name: str, raw: bool, **opts: Any) -> None:
        action = build(lambda: txbuild.trigger_action(catalog(), market, side, size, trigger, kind, limit=limit,
                                                      reduce_only=reduce_only, cloid=cloid, raw=raw))
        submit(action, key_name, **opts)


_trigger_command("stop", "sl", "stop-loss", "bookchain tx stop BTC-PERP sell 0.1 --trigger 57000 --reduce-only --key bob")
_trigger_command("take-profit", "tp", "take-profit",
                 "bookchain tx take-profit BTC/USDC sell 0.5 --trigger 66000 --limit 65900 --key bob")


@tx.command("tpsl")
@click.argument("market")
@click.option("--side", type=click.Choice(["buy", "sell"], case_sensitive=False), default="sell", show_default=True,
              help="The closing side: sell closes a long, buy closes a short.")
@click.option("--tp", default=None, metavar="PRICE", help="Take-profit trigger price.")
@click.option("--sl", default=None, metavar="PRICE", help="Stop-loss trigger price.")
@key_option()
@raw_option
@common_options
def tpsl(market: str, side: str, tp: str | None, sl: str | None, key_name: str, raw: bool, **opts: Any) -> None:
    """Position TP/SL: market triggers that close the whole position, whatever its size
    when they fire; a new one replaces the old of its kind; removed when the position closes.

    Example (a long): bookchain tx tpsl BTC-PERP --tp 66000 --sl 57000 --key bob
    """
    action = build(lambda: txbuild.position_tpsl_action(catalog(), market, side, tp, sl, raw=raw))
    submit(action, key_name, **opts)


@tx.command("modify-trigger")
@click.argument("market")
@_order_ref_options
@click.option("--trigger", required=True, metavar="PRICE", help="New trigger price (ticks with --raw).")
@click.option("--limit", default=None, metavar="PRICE", help="New limit price (a limit trigger only).")
@click.option("--size", required=True, metavar="SIZE", help="New size in base units (0 for a position TP/SL).")
@key_option()
@raw_option
@common_options
def modify_trigger(market: str, oid: int | None, cloid: str | None, trigger: str, limit: str | None, size: str,
                   key_name: str, raw: bool, **opts: Any) -> None:
    """Change a waiting trigger order's trigger price, limit price and size; it keeps its id.

    Example: bookchain tx modify-trigger BTC-PERP --oid 12 --trigger 56500 --size 0.1 --key bob
    """
    action = build(lambda: txbuild.modify_trigger_action(catalog(), market, trigger, size, limit, oid, cloid, raw))
    submit(action, key_name, **opts)


def current_price_ticks(market: str, oid: int | None, cloid: str | None, key_name: str) -> int:
    """The price (ticks) of the signer's open order named by --oid/--cloid on MARKET."""
    ctx = get_ctx()
    m = build(lambda: catalog().market(market))
    o, c = build(lambda: txbuild.order_id(oid, cloid))
    address = ctx.key(key_name).address_text
    doc = translate_errors(lambda: ctx.client().orders(address))
    for order in doc.get("orders") or []:
        if not isinstance(order, dict) or order.get("market") != m.id:
            continue
        if (o is not None and order.get("oid") == o) or (c is not None and order.get("cloid") == c.hex()):
            return int(order["price"])
    which = f"oid {o}" if o is not None else f"cloid {cloid!r}"
    raise Rejected(f"UNKNOWN_ORDER: {key_name} has no open order with {which} on {m.symbol} "
                   "(give --price to send the modify anyway)")


@tx.command("batch")
@click.argument("actions", metavar="FILE|-|JSON")
@key_option()
@raw_option
@common_options
def batch(actions: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Several order actions under one signature, applied in order (each gets its own result).

    ACTIONS is a JSON list read from a file, from stdin ("-") or given inline. Items:

    \b
      {"type":"order","market":"BTC/USDC","side":"buy","size":"0.1","price":"60000",
       "tif":"gtc","reduce_only":false,"cloid":"a1","expires_at_ms":1767225600000}
                                                      ("expires_at_ms" optional: good-til-time)
      {"type":"cancel","market":"BTC/USDC","oid":7}   (or "cloid")
      {"type":"cancel_all","market":"BTC/USDC"}       (market optional)
      {"type":"modify","market":"BTC/USDC","oid":7,"price":"60001","size":"0.05"}
                                                      ("price" optional: the order's own)

    Example: bookchain tx batch orders.json --key bob
    """
    items = _batch_items(actions)
    if isinstance(items, list):
        for item in items:  # a modify without a price keeps the order's, asked from the node
            if isinstance(item, dict) and str(item.get("type", "")).lower() == "modify" and "price" not in item \
                    and "market" in item and ("oid" in item or "cloid" in item):
                oid = item.get("oid")
                item["price_ticks"] = current_price_ticks(str(item["market"]), oid if isinstance(oid, int) else None,
                                                          item.get("cloid"), key_name)
    action = build(lambda: txbuild.batch_action(catalog(), items, raw))
    submit(action, key_name, **opts)


def _batch_items(actions: str) -> Any:
    """The JSON list of ``tx batch``: from stdin, an existing file, or the argument itself."""
    hint = "ACTIONS"
    if actions == "-":
        source, text = "stdin", sys.stdin.read()
    else:
        path = Path(actions)
        try:
            is_file = not actions.lstrip().startswith("[") and path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            is_file = False
        if is_file:
            try:
                source, text = f"file {actions}", path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise click.BadParameter(f"cannot read {actions}: {err}", param_hint=hint) from None
        else:
            source, text = "", actions
    try:
        return json.loads(text)
    except RecursionError:
        raise click.BadParameter("the JSON is nested too deeply", param_hint=hint) from None
    except ValueError as err:
        if source:
            raise click.BadParameter(f"{source} is not valid JSON: {err}", param_hint=hint) from None
        shown = actions if len(actions) <= 40 else actions[:40] + "…"
        raise click.BadParameter(f"{shown!r} is neither a file nor valid JSON ({err}); give a JSON list "
                                 "of actions inline, a file holding one, or - for stdin", param_hint=hint) from None


@tx.command("lend")
@click.argument("asset")
@click.argument("switch", type=click.Choice(["on", "off"]))
@key_option()
@common_options
def lend(asset: str, switch: str, key_name: str, **opts: Any) -> None:
    """Turn auto-lending of ASSET on (the default: idle balance earns the supply rate) or off.

    With it off, credits stay idle (outside the pool) as far as the pool could pay them to a
    withdrawing supplier within its utilization cap; the rest is lent (and earns).

    Example: bookchain tx lend USDC off --key alice
    """
    submit(build(lambda: txbuild.lend_action(catalog(), asset, switch == "on")), key_name, **opts)


@tx.command("borrow")
@click.argument("asset")
@click.argument("amount")
@key_option()
@raw_option
@common_options
def borrow(asset: str, amount: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Borrow AMOUNT of ASSET from its pool (within initial margin and the utilization cap).

    Example: bookchain tx borrow USDC 1000 --key alice
    """
    submit(build(lambda: txbuild.borrow_action(catalog(), asset, amount, raw)), key_name, **opts)


@tx.command("repay")
@click.argument("asset")
@click.argument("amount")
@key_option()
@raw_option
@common_options
def repay(asset: str, amount: str, key_name: str, raw: bool, **opts: Any) -> None:
    """Repay up to AMOUNT of ASSET debt from the idle balance of ASSET.

    Example: bookchain tx repay USDC 1000 --key alice
    """
    submit(build(lambda: txbuild.repay_action(catalog(), asset, amount, raw)), key_name, **opts)


@tx.command("set-unwind")
@click.argument("markets", nargs=-1)
@key_option()
@common_options
def set_unwind(markets: tuple[str, ...], key_name: str, **opts: Any) -> None:
    """Choose which positions a liquidation unwinds first (markets in order; none = default:
    largest risk contribution first).

    Example: bookchain tx set-unwind BTC-PERP ETH/USDC --key alice
    """
    submit(build(lambda: txbuild.unwind_action(catalog(), list(markets))), key_name, **opts)


@tx.command("schedule-cancel")
@click.option("--in", "in_seconds", default=None, type=click.IntRange(1, 10**9), metavar="SECONDS",
              help="Arm (or move) the switch SECONDS from now (at least the chain's minimum, 5 s by default).")
@click.option("--clear", is_flag=True, help="Disarm the switch.")
@key_option()
@common_options
def schedule_cancel(in_seconds: int | None, clear: bool, key_name: str, **opts: Any) -> None:
    """The dead-man switch: unless renewed, every open order of --key is cancelled at the
    deadline. Each set or clear counts against a per-day limit (10 by default).

    \b
    Examples:
      bookchain tx schedule-cancel --in 60 --key alice
      bookchain tx schedule-cancel --clear --key alice
    """
    if clear == (in_seconds is not None):
        raise click.UsageError("give exactly one of --in SECONDS and --clear")
    deadline = None if clear else now_ms() + (in_seconds or 0) * 1000
    submit(txbuild.schedule_cancel_action(deadline), key_name, **opts)
