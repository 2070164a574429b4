"""``--verify`` on queries: show state proven against the genesis the user trusts.

The node's ordinary answers (``/account``, ``/order_status``, ``/pools``) are whatever the
node says. With ``--verify`` the CLI instead asks for the records themselves with Merkle
proofs (``/proof``) and checks them with the light client (node/lightclient.py) against
the genesis document in the CLI home (``HOME/genesis.json``; ``--genesis FILE``): the
certificate of the block after the proven height, signed by more than 2/3 of the genesis
validators' power, carries the app hash the proof's state root gives. What is printed is
decoded from those proven records alone (balances from the account record and the pools'
indices at the same height), never from the unverified answers, so it is the state after
the newest provable height (one block behind the node's latest).

Exit codes: a failed check exits ``EXIT_UNVERIFIED`` with the reason; a node error (e.g.
``NOT_READY`` before the first block) exits as every RPC error does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from cli import render
from cli.context import Unverified, get_ctx, print_json, translate_errors
from node.jsonfmt import view_json
from node.lightclient import Verified, VerifyError, verify_keys
from node.wallet.units import Catalog
from state import records
from state.genesis import Genesis
from state.keys import address_from_text, address_to_text
from state.lending import unbig
from state.muldiv import ONE, mul_one, mul_one_ceil
from state.trigbook import SL

F = TypeVar("F", bound=Callable[..., Any])

VERIFY_HELP = ("Prove the answer against the genesis you trust (HOME/genesis.json or --genesis): "
               "shows the state after the newest height a committed block certifies.")


def verify_options(f: F) -> F:
    f = click.option("--genesis", "genesis_file", default=None, metavar="FILE",
                     help="With --verify: the genesis document to trust (default HOME/genesis.json).")(f)
    return click.option("--verify", "verify", is_flag=True, help=VERIFY_HELP)(f)


def trusted_genesis(path: str | None) -> Genesis:
    where = Path(path).expanduser() if path else get_ctx().home / "genesis.json"
    if not where.is_file():
        raise click.UsageError(f"--verify trusts a genesis document and {where} is not a file: copy the chain's "
                               "genesis.json there or pass --genesis FILE")
    try:
        return Genesis.load(str(where))
    except Exception as err:  # any parse or validation failure of the user's file
        raise click.UsageError(f"{where} is not a genesis document: {err}") from None


def prove(genesis: Genesis, keys: Sequence[bytes]) -> list[Verified]:
    """The records ``keys`` at the node's newest provable height, each checked."""
    client = get_ctx().client()

    def run() -> list[Verified]:
        return verify_keys(lambda path, params: client.get(path, **params), genesis, keys)

    try:
        out: list[Verified] = translate_errors(run)
    except VerifyError as err:
        raise Unverified(f"verification failed: {err}") from None
    return out


def _decode(v: Verified) -> Any:
    if v.value is None:
        return None
    try:
        return records.decode_record(v.value)
    except Exception as err:  # proven, but not in a layout this CLI knows
        raise click.ClickException(f"the proven record {v.key.hex()} does not decode: {err}") from None


# ------------------------------------------------------------------ records to views
def _indices(rec: Any) -> tuple[int, int]:
    """A pool record's (supply index, borrow index); an absent record is a fresh pool."""
    return (ONE, ONE) if rec is None else (unbig(rec[0]), unbig(rec[1]))


def account_view(genesis: Genesis, address: bytes, rec: Any, pools: dict[int, Any]) -> dict[str, Any]:
    """An account record (state/account.py ``Account.record``) with balances valued at the
    pools' indices of the same height, as ``Pools.real`` values them."""
    symbols = {a.asset_id: a.symbol for a in genesis.assets}
    markets = {m.market_id: m.symbol for m in genesis.markets}
    view: dict[str, Any] = {"address": address_to_text(address), "exists": rec is not None,
                            "balances": [], "positions": [], "leverage": []}
    if rec is None:
        return view
    lend_off = set(rec[2])
    for asset, idle, scaled in rec[0]:
        si, bi = _indices(pools.get(asset))
        supplied = mul_one(scaled, si) if scaled > 0 else 0
        borrowed = mul_one_ceil(-scaled, bi) if scaled < 0 else 0
        view["balances"].append({"asset": asset, "symbol": symbols.get(asset), "balance": idle + supplied - borrowed,
                                 "idle": idle, "supplied": supplied, "borrowed": borrowed,
                                 "auto_lend": asset not in lend_off})
    for m, size, entry, realized, funding_index, _epoch in rec[1]:
        view["positions"].append({"market": m, "symbol": markets.get(m), "size": size, "entry_notional": entry,
                                  "realized_pnl": realized, "funding_index": funding_index})
    if len(rec) > 4:
        view["leverage"] = [{"market": m, "symbol": markets.get(m), "leverage": lev} for m, lev in rec[4]]
    return view


def order_view(genesis: Genesis, oid: int, order: Any, trigger: Any) -> dict[str, Any]:
    """What the state holds of order ``oid``: resting (state/book.py ``Order.record``),
    waiting as a trigger (state/trigbook.py ``Trigger.record``), or neither."""
    markets = {m.market_id: m.symbol for m in genesis.markets}
    if order is not None:
        (_oid, _seq, market, owner, is_buy, price, size, orig_size, tif, reduce_only, cloid) = order[:11]
        return {"oid": oid, "status": "open", "market": market, "symbol": markets.get(market),
                "owner": address_to_text(owner), "side": "buy" if is_buy else "sell", "price": price, "size": size,
                "orig_size": orig_size, "tif": tif, "reduce_only": reduce_only,
                "cloid": None if cloid is None else cloid.hex(),
                "expires_at_ms": order[11] if len(order) > 11 else None}
    if trigger is not None:
        (market, owner, is_buy, size, trig, tpsl, is_market, limit, reduce_only, cloid, whole, parent) = trigger[:12]
        return {"oid": oid, "status": "waiting", "market": market, "symbol": markets.get(market),
                "owner": address_to_text(owner), "side": "buy" if is_buy else "sell",
                "size": "position" if whole else size, "kind": "sl" if tpsl == SL else "tp", "trigger_price": trig,
                "is_market": is_market, "limit": limit, "reduce_only": reduce_only,
                "cloid": None if cloid is None else cloid.hex(), "parent": parent}
    return {"oid": oid, "status": "not_open"}


def pool_view(genesis: Genesis, asset: int, rec: Any) -> dict[str, Any]:
    """A pool record (state/lending.py ``Pool.record``): supplied and borrowed valued at its
    own indices; no record is a pool untouched since genesis."""
    symbol = next((a.symbol for a in genesis.assets if a.asset_id == asset), None)
    if rec is None:
        return {"asset": asset, "symbol": symbol, "exists": False}
    si, bi, ss, ds, idle_total, custody = (unbig(x) for x in rec[:6])
    return {"asset": asset, "symbol": symbol, "exists": True, "supplied": mul_one(ss, si),
            "borrowed": mul_one_ceil(ds, bi), "idle_total": idle_total, "custody": custody,
            "borrow_rate_ppm": rec[6], "oracle_price": rec[7], "oracle_time_ms": rec[8],
            "supply_index": si, "borrow_index": bi}


# ------------------------------------------------------------------ output
def headline(v: Verified) -> str:
    c = v.certified_by
    return (f"verified at height {v.height}: app hash {v.app_hash.hex()[:16]}… certified by block {c.height} "
            f"({c.block_hash.hex()[:12]}…), signed by {c.signed_power} of {c.total_power} genesis voting power")


def _emit(proven: list[Verified], name: str, view: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    first = proven[0]
    if as_json:
        print_json({"verified": True, "height": first.height, "certified_by": first.as_json()["certified_by"],
                    name: view_json(view), "proofs": [v.as_json() for v in proven]})
        return
    click.echo(headline(first))
    human(view)


def show_account(who: str, genesis_file: str | None, as_json: bool) -> None:
    genesis = trusted_genesis(genesis_file)
    address = address_from_text(who)
    assets = [a.asset_id for a in genesis.assets]
    proven = prove(genesis, [records.account_key(address), *(records.pool_key(a) for a in assets)])
    pools = {a: _decode(v) for a, v in zip(assets, proven[1:], strict=True)}
    view = account_view(genesis, address, _decode(proven[0]), pools)
    _emit(proven, "account", view, as_json, lambda x: _print_account(x, Catalog.from_genesis(genesis)))


def show_order(oid: int, genesis_file: str | None, as_json: bool) -> None:
    genesis = trusted_genesis(genesis_file)
    proven = prove(genesis, [records.order_key(oid), records.trigger_key(oid)])
    view = order_view(genesis, oid, _decode(proven[0]), _decode(proven[1]))
    _emit(proven, "order", view, as_json, lambda x: _print_order(x, Catalog.from_genesis(genesis)))


def show_pools(genesis_file: str | None, as_json: bool) -> None:
    genesis = trusted_genesis(genesis_file)
    assets = [a.asset_id for a in genesis.assets]
    proven = prove(genesis, [records.pool_key(a) for a in assets])
    view = [pool_view(genesis, a, _decode(v)) for a, v in zip(assets, proven, strict=True)]
    _emit(proven, "pools", view, as_json, lambda x: _print_pools(x, Catalog.from_genesis(genesis)))


def _print_account(a: dict[str, Any], cat: Catalog) -> None:
    f = render.Fmt(cat)
    c = render.console()
    c.print(f"account {a['address']}" + ("" if a["exists"] else ": no record (no balances, no positions)"))
    if not a["exists"]:
        return
    t = render.narrow_table("balances (negative = owed)")
    for col in ("asset", "balance", "idle", "supplied", "borrowed", "auto-lend"):
        t.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    for b in a["balances"]:
        asset = b["asset"]
        t.add_row(f.asset_name(asset), f.amount(asset, b["balance"]), f.amount(asset, b["idle"]),
                  f.amount(asset, b["supplied"]), f.amount(asset, b["borrowed"]), "yes" if b["auto_lend"] else "no")
    c.print(t)
    if a["positions"]:
        p = render.narrow_table("positions (amounts in the quote asset)")
        for col in ("market", "size", "entry", "realized"):
            p.add_column(col, justify="left" if col == "market" else "right", min_width=len(col))
        for x in a["positions"]:
            mid = x["market"]
            p.add_row(f.market_name(mid), f.signed_size(mid, x["size"]), f.quote_amount(mid, x["entry_notional"]),
                      f.quote_amount(mid, x["realized_pnl"]))
        c.print(p)
    if a["leverage"]:
        c.print(render.kv_table("leverage", [(f.market_name(x["market"]), f"{x['leverage']}x") for x in a["leverage"]]))


def _print_order(o: dict[str, Any], cat: Catalog) -> None:
    f = render.Fmt(cat)
    if o["status"] == "not_open":
        click.echo(f"order {o['oid']}: not open (neither resting nor a waiting trigger; "
                   "filled, cancelled, expired or never placed)")
        return
    mid = o["market"]
    rows: list[tuple[str, Any]] = [("status", o["status"]), ("market", f.market_name(mid)), ("owner", o["owner"]),
                                   ("side", o["side"])]
    if o["status"] == "open":
        rows += [("price", f.price(mid, o["price"])), ("size", f.size(mid, o["size"])),
                 ("orig size", f.size(mid, o["orig_size"])), ("reduce only", "yes" if o["reduce_only"] else "no"),
                 ("cloid", o["cloid"]), ("expires at (ms)", o["expires_at_ms"])]
    else:
        size = o["size"] if o["size"] == "position" else f.size(mid, o["size"])
        rows += [("kind", o["kind"]), ("trigger price", f.price(mid, o["trigger_price"])), ("size", size),
                 ("limit", "market" if o["is_market"] else f.price(mid, o["limit"])),
                 ("reduce only", "yes" if o["reduce_only"] else "no"), ("cloid", o["cloid"]), ("parent", o["parent"] or None)]
    render.console().print(render.kv_table(f"order {o['oid']}", rows))


def _print_pools(pools: list[dict[str, Any]], cat: Catalog) -> None:
    f = render.Fmt(cat)
    coll = render.collateral_of(cat)
    t = render.narrow_table("lending pools (proven records)")
    for col in ("asset", "supplied", "borrowed", "custody", "borrow rate", "oracle price"):
        t.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    for p in pools:
        asset = p["asset"]
        if not p["exists"]:
            t.add_row(f.asset_name(asset), "0", "0", "0", "-", "-")
            continue
        t.add_row(f.asset_name(asset), f.amount(asset, p["supplied"]), f.amount(asset, p["borrowed"]),
                  f.amount(asset, p["custody"]), render.ppm_pct(p["borrow_rate_ppm"]),
                  "-" if not p["oracle_price"] else
                  (coll.from_units(p["oracle_price"]) + " " + coll.symbol if coll else str(p["oracle_price"])))
    render.console().print(t)
