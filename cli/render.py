"""Human tables for RPC answers (``--json`` bypasses all of this).

Prices, sizes and amounts are shown in human units when the market/asset is known from the
catalog, and as raw integers otherwise: a table must never fail because the node added a
market the CLI has not seen. Missing fields print as "-" for the same reason.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from node.client import as_int
from node.wallet.units import AssetInfo, Catalog, MarketInfo, format_scaled


def console() -> Console:
    # resolved at call time so click's test runner (which swaps sys.stdout) sees the output;
    # a wide virtual width keeps 0x addresses whole when output is piped
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def _int(v: Any) -> int | None:
    try:
        return as_int(v)
    except (TypeError, ValueError):
        return None


def _s(v: Any) -> str:
    return "-" if v is None or v == "" else str(v)


def short(h: Any, n: int = 12) -> str:
    text = _s(h)
    return text if len(text) <= n + 2 else text[:n] + "…"


class Fmt:
    """Unit formatting bound to an optional catalog."""

    def __init__(self, cat: Catalog | None) -> None:
        self.cat = cat

    def market(self, mid: Any) -> MarketInfo | None:
        return self.cat.maybe_market(_int(mid)) if self.cat is not None else None

    def market_name(self, mid: Any) -> str:
        m = self.market(mid)
        return m.symbol if m else _s(mid)

    def price(self, mid: Any, ticks: Any) -> str:
        m, t = self.market(mid), _int(ticks)
        return m.ticks_to_price(t) if m and t is not None else _s(ticks)

    def size(self, mid: Any, lots: Any) -> str:
        m, n = self.market(mid), _int(lots)
        return m.lots_to_size(n) if m and n is not None else _s(lots)

    def amount(self, asset: Any, units: Any) -> str:
        u = _int(units)
        if self.cat is None or u is None:
            return _s(units)
        for a in self.cat.assets:
            if a.id == _int(asset) or a.symbol == asset:
                return a.from_units(u)
        return _s(units)

    def asset_name(self, asset: Any) -> str:
        if self.cat is not None:
            for a in self.cat.assets:
                if a.id == _int(asset):
                    return a.symbol
        return _s(asset)

    def avg_price(self, mid: Any, ticks: Any) -> str:
        """A mean fill price in ticks (a decimal string) in quote per base, to the tick's precision
        plus two places."""
        m = self.market(mid)
        if ticks is None:
            return "-"
        if m is None:
            return _s(ticks)
        try:
            value = Decimal(str(ticks)) * m.tick_size / 10**m.quote.decimals
        except InvalidOperation:
            return _s(ticks)
        places = max(0, -Decimal(m.tick_text).as_tuple().exponent) + 2  # type: ignore[operator]
        return f"{value:.{places}f}"

    def signed_size(self, mid: Any, lots: Any) -> str:
        n = _int(lots)
        if n is not None and n < 0:
            return "-" + self.size(mid, -n)
        return self.size(mid, lots)

    def per_base(self, mid: Any, per_lot: Any) -> str:
        """Quote smallest units per lot (a funding index) as quote per whole base unit."""
        m, u = self.market(mid), _int(per_lot)
        if m is None or u is None:
            return _s(per_lot)
        sign, u = ("-", -u) if u < 0 else ("", u)
        return sign + format_scaled(u * 10**m.base.decimals, 1, m.lot_size * 10**m.quote.decimals)

    def quote_amount(self, mid: Any, units: Any) -> str:
        m, u = self.market(mid), _int(units)
        return m.quote.from_units(u) if m and u is not None else _s(units)


def _time(ms: Any) -> str:
    t = _int(ms)
    if not t:
        return _s(ms)
    stamp = datetime.fromtimestamp(t / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return f"{stamp} ({t})"


def _short_time(ms: Any) -> str:
    """UTC to the second, for narrow tables (``_time`` adds milliseconds and the raw value)."""
    t = _int(ms)
    if not t:
        return _s(ms)
    return datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def narrow_table(title: str) -> Table:
    """A table meant to fit 80 columns: no vertical rules, numbers never cut."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def kv_table(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, _s(v))
    return t


# ---------------------------------------------------------------------------- receipts
def fills_table(fills: list[dict[str, Any]], f: Fmt, title: str = "fills") -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("height", "market", "taker side", "price", "size", "maker", "taker",
                "maker oid", "taker oid", "maker fee", "taker fee"):
        t.add_column(col)
    for x in fills:
        mid = x.get("market")
        t.add_row(_s(x.get("height")), f.market_name(mid), _s(x.get("side")), f.price(mid, x.get("price")),
                  f.size(mid, x.get("size")), short(x.get("maker"), 14), short(x.get("taker"), 14),
                  _s(x.get("maker_oid")), _s(x.get("taker_oid")),
                  f.quote_amount(mid, x.get("maker_fee")), f.quote_amount(mid, x.get("taker_fee")))
    return t


def print_receipt(answer: dict[str, Any], cat: Catalog | None, markets: list[int | None] | None = None) -> None:
    """A broadcast answer (sync or commit) or a /tx answer.

    ``markets`` names the market of each action (the CLI knows what it signed), so filled
    and resting sizes print in base units even for an order that did not fill.
    """
    c = console()
    f = Fmt(cat)
    receipt = answer.get("receipt") or {}
    name = answer.get("name") or receipt.get("name") or ("OK" if answer.get("code", receipt.get("code")) == 0 else "-")
    message = answer.get("message") or receipt.get("message") or ""
    where = f" at height {answer['height']}" if answer.get("height") is not None else " (in mempool)" if not receipt else ""
    style = "green" if name == "OK" else "red"
    c.print(f"tx {_s(answer.get('hash') or receipt.get('tx_hash'))}{where}: [{style}]{name}[/{style}]"
            + (f" {message}" if message else ""))
    if receipt:
        c.print(f"  kind {_s(receipt.get('kind'))}  signer {_s(receipt.get('signer'))}")
    results = receipt.get("results") or []
    if results:
        t = Table(title="results", title_justify="left")
        for col in ("#", "status", "code", "oid", "filled", "avg price", "resting", "message"):
            t.add_column(col)
        all_fills: list[dict[str, Any]] = []
        for i, r in enumerate(results):
            fills = r.get("fills") or []
            all_fills.extend(fills)
            mid = fills[0].get("market") if fills else (markets[i] if markets and i < len(markets) else None)
            status = "waiting for trigger" if r.get("status") == "waiting" else _s(r.get("status"))
            t.add_row(str(i), status, _s(r.get("name", r.get("code"))), _s(r.get("oid")),
                      f.size(mid, r.get("filled")) if mid is not None else _s(r.get("filled")),
                      f.avg_price(mid, r.get("avg_price")),
                      f.size(mid, r.get("resting")) if mid is not None else _s(r.get("resting")),
                      _result_note(r, f, mid))
        c.print(t)
        if all_fills:
            height = answer.get("height")
            c.print(fills_table([{"height": height, **x} for x in all_fills], f))


def _result_note(r: dict[str, Any], f: Fmt, mid: Any) -> str:
    """The result's message, plus what happened to the part of an order that neither
    traded nor rests: an IOC or market order's remainder cancelled, a reduce-only order cut."""
    notes = [_s(r.get("message"))] if r.get("message") else []
    for key, text in (("cancelled", "remainder cancelled"), ("clipped", "reduce-only clipped by")):
        lots = _int(r.get(key))
        if lots:
            notes.append(f"{text} {f.size(mid, lots) if mid is not None else lots}")
    if r.get("status") == "waiting":
        notes.append("waiting for its trigger")
    return "; ".join(notes)


# ---------------------------------------------------------------------------- queries
def print_order_status(doc: dict[str, Any], cat: Catalog | None) -> None:
    o = doc.get("order") or {}
    f = Fmt(cat)
    mid = o.get("market")
    rows: list[tuple[str, Any]] = [("oid", o.get("oid")), ("status", o.get("status"))]
    if o.get("reason"):
        rows.append(("reason", o.get("reason")))
    rows += [("market", f.market_name(mid)), ("owner", o.get("owner"))]
    if o.get("status") == "open":
        rows += [("side", o.get("side")), ("price", f.price(mid, o.get("price"))),
                 ("size", f.size(mid, o.get("size"))), ("placed size", f.size(mid, o.get("orig_size")))]
    if o.get("height") is not None:
        rows.append(("at height", o.get("height")))
    console().print(kv_table("order", rows))


def print_status(st: dict[str, Any]) -> None:
    v = st.get("validator") or {}
    rows = [("node id", st.get("node_id")), ("moniker", st.get("moniker")), ("chain id", st.get("chain_id")),
            ("height", st.get("latest_height")), ("block hash", st.get("latest_block_hash")),
            ("app hash", st.get("latest_app_hash")), ("block time", _time(st.get("latest_block_time_ms"))),
            ("catching up", st.get("catching_up")),
            ("validator", f"{v.get('pubkey')} (power {v.get('power')})" if v else "no"),
            ("peers", len(st.get("peers") or [])), ("mempool", st.get("mempool_size"))]
    console().print(kv_table("status", rows))


def print_validators(doc: dict[str, Any]) -> None:
    t = Table(title=f"validators (total power {_s(doc.get('total_power'))})", title_justify="left")
    for col in ("name", "pubkey", "power"):
        t.add_column(col)
    for v in doc.get("validators", []):
        t.add_row(_s(v.get("name")), _s(v.get("pubkey")), _s(v.get("power")))
    console().print(t)


def print_block(b: dict[str, Any]) -> None:
    header = b.get("header") or {}
    rows = [("height", b.get("height")), ("hash", b.get("hash"))]
    rows += [(f"header.{k}", _time(v) if k == "time_ms" else v) for k, v in header.items()]
    rows.append(("txs", len(b.get("txs") or [])))
    c = console()
    c.print(kv_table(f"block {_s(b.get('height'))}", rows))
    txs = b.get("txs") or []
    if txs:
        import hashlib

        t = Table(title="txs", title_justify="left")
        t.add_column("#")
        t.add_column("hash")
        t.add_column("bytes")
        for i, tx in enumerate(txs):
            t.add_row(str(i), hashlib.sha256(bytes.fromhex(tx)).hexdigest(), str(len(tx) // 2))
        c.print(t)


def print_evidence(a: dict[str, Any]) -> None:
    """``/evidence``: one row per equivocation, committed ones first."""
    rows = [("committed", e) for e in a.get("evidence") or []] + [("pending", e) for e in a.get("pending") or []]
    if not rows:
        console().print(f"no equivocation evidence (node at height {_s(a.get('height'))})")
        return
    t = Table(title="equivocation evidence", title_justify="left")
    for col in ("status", "committed at", "validator", "height", "round", "type", "block ids"):
        t.add_column(col)
    for status, e in rows:
        ids = " / ".join(short(v.get("block_hash") or "nil", 12) for v in e.get("votes") or [])
        t.add_row(status, _s(e.get("committed_height")), short(e.get("validator"), 16), _s(e.get("height")),
                  _s(e.get("round")), _s(e.get("type")), ids)
    console().print(t)


def print_block_results(r: dict[str, Any], cat: Catalog | None) -> None:
    c = console()
    c.print(kv_table(f"block results {_s(r.get('height'))}",
                     [("height", r.get("height")), ("app hash", r.get("app_hash")),
                      ("receipts", len(r.get("receipts") or [])), ("events", len(r.get("events") or [])),
                      ("writes", len(r.get("write_digests") or []))]))
    t = Table(title="receipts", title_justify="left")
    for col in ("#", "tx", "kind", "signer", "code", "message", "fills"):
        t.add_column(col)
    for i, rc in enumerate(r.get("receipts") or []):
        nfills = sum(len(x.get("fills") or []) for x in rc.get("results") or [])
        t.add_row(str(i), short(rc.get("tx_hash"), 16), _s(rc.get("kind")), short(rc.get("signer"), 14),
                  _s(rc.get("name", rc.get("code"))), _s(rc.get("message")), str(nfills))
    c.print(t)


def print_book(b: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    mid = b.get("market")
    m = f.market(mid) if _int(mid) is not None else (cat.market(mid) if cat and mid is not None else None)
    key = m.id if m else mid
    t = Table(title=f"{m.symbol if m else _s(mid)} book at height {_s(b.get('height'))}", title_justify="left")
    for col in ("bid orders", "bid size", "bid", "ask", "ask size", "ask orders"):
        t.add_column(col, justify="right")
    bids, asks = b.get("bids") or [], b.get("asks") or []
    for i in range(max(len(bids), len(asks))):
        bid = bids[i] if i < len(bids) else None
        ask = asks[i] if i < len(asks) else None
        t.add_row(
            _s(bid[2]) if bid else "", f.size(key, bid[1]) if bid else "", f"[green]{f.price(key, bid[0])}[/green]" if bid else "",
            f"[red]{f.price(key, ask[0])}[/red]" if ask else "", f.size(key, ask[1]) if ask else "", _s(ask[2]) if ask else "",
        )
    console().print(t)


def orders_table(orders: list[dict[str, Any]], f: Fmt) -> Table:
    t = Table(title="open orders", title_justify="left")
    for col in ("oid", "market", "side", "price", "size", "orig size", "tif", "reduce only", "cloid"):
        t.add_column(col)
    for o in orders:
        mid = o.get("market")
        t.add_row(_s(o.get("oid")), f.market_name(mid), _s(o.get("side")), f.price(mid, o.get("price")),
                  f.size(mid, o.get("size")), f.size(mid, o.get("orig_size")), _s(o.get("tif")),
                  _s(o.get("reduce_only")), _s(o.get("cloid")))
    return t


def print_orders(doc: dict[str, Any], cat: Catalog | None) -> None:
    console().print(orders_table(doc.get("orders") or [], Fmt(cat)))


def print_triggers(doc: dict[str, Any], cat: Catalog | None) -> None:
    """Waiting trigger orders (stop / take-profit)."""
    f = Fmt(cat)
    t = Table(title="trigger orders", title_justify="left")
    for col in ("oid", "market", "side", "kind", "trigger", "limit", "active size", "parent", "reduce only", "cloid"):
        t.add_column(col)
    for o in doc.get("triggers") or []:
        mid, tr = o.get("market"), o.get("trigger") or {}
        size = tr.get("active_size")
        t.add_row(_s(o.get("oid")), f.market_name(mid), _s(o.get("side")), _s(tr.get("kind")),
                  f.price(mid, tr.get("trigger_price")), "market" if tr.get("is_market") else f.price(mid, tr.get("limit")),
                  "position" if size == "position" else f.size(mid, size), _s(tr.get("parent")),
                  _s(o.get("reduce_only")), _s(o.get("cloid")))
    console().print(t)


def print_fills(doc: dict[str, Any], cat: Catalog | None) -> None:
    console().print(fills_table(doc.get("fills") or [], Fmt(cat)))


def ppm_pct(v: Any, digits: int = 2) -> str:
    """Parts per million as a percentage (``950000`` -> ``95.00%``)."""
    n = _int(v)
    return _s(v) if n is None else f"{n / 10_000:.{digits}f}%"


def ppb_pct(v: Any) -> str:
    n = _int(v)
    return _s(v) if n is None else f"{n / 10_000_000:.4f}%"


def collateral_of(cat: Catalog | None) -> AssetInfo | None:
    """Every market is quoted in the collateral asset (state/genesis.py)."""
    return cat.markets[0].quote if cat is not None and cat.markets else None


def print_account(a: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    c = console()
    c.print(f"account {_s(a.get('address'))}")
    raw_margin = a.get("margin")
    margin: dict[str, Any] = raw_margin if isinstance(raw_margin, dict) else {}
    detail = {str(b.get("asset")): b for b in margin.get("balances") or [] if isinstance(b, dict)}
    plain = [b for b in a.get("balances") or [] if isinstance(b, dict)]
    t = narrow_table("balances (negative = owed)")
    for col in ("asset", "balance", "idle", "supplied", "borrowed", "auto-lend"):
        t.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    seen: set[str] = set()
    for b in plain:
        asset = b.get("asset")
        seen.add(str(asset))
        d = detail.get(str(asset), {})
        row = [_s(b.get("symbol") or f.asset_name(asset)), f.amount(asset, d.get("balance", b.get("free"))),
               f.amount(asset, d.get("idle")), f.amount(asset, d.get("supplied")),
               f.amount(asset, d.get("borrowed")), _yes(d.get("auto_lend"))]
        t.add_row(*row)
    for key, d in detail.items():  # a borrowed asset has no positive balance: still show its debt
        if key in seen:
            continue
        asset = d.get("asset")
        row = [f.asset_name(asset), f.amount(asset, d.get("balance")), f.amount(asset, d.get("idle")),
               f.amount(asset, d.get("supplied")), f.amount(asset, d.get("borrowed")), _yes(d.get("auto_lend"))]
        t.add_row(*row)
    c.print(t)
    positions = a.get("positions") or []
    if positions:
        p = narrow_table("positions (amounts in the quote asset)")
        for col in ("market", "size", "entry", "mark", "notional", "unrealized", "realized", "funding"):
            p.add_column(col, justify="left" if col == "market" else "right", min_width=len(col))
        for x in positions:
            mid = x.get("market")
            p.add_row(_s(x.get("symbol") or f.market_name(mid)), f.signed_size(mid, x.get("size")),
                      f.quote_amount(mid, x.get("entry_notional")), f.quote_amount(mid, x.get("mark")),
                      f.quote_amount(mid, x.get("notional")), f.quote_amount(mid, x.get("unrealized_pnl")),
                      f.quote_amount(mid, x.get("realized_pnl")), f.quote_amount(mid, x.get("funding_owed")))
        c.print(p)
    if a.get("open_orders"):
        c.print(orders_table(a["open_orders"], f))
    if margin:
        c.print(kv_table("margin", margin_rows(margin, cat)))


def _yes(v: Any) -> str:
    return "-" if v is None else ("yes" if v else "no")


def margin_rows(m: dict[str, Any], cat: Catalog | None) -> list[tuple[str, Any]]:
    """The scalar margin figures in collateral units; the lists become words, not reprs."""
    f = Fmt(cat)
    coll = collateral_of(cat)
    sym = f" {coll.symbol}" if coll else ""

    def money(v: Any) -> str:
        n = _int(v)
        return _s(v) if coll is None or n is None else coll.from_units(n) + sym

    rows: list[tuple[str, Any]] = [
        ("equity", money(m.get("equity"))), ("initial requirement", money(m.get("initial"))),
        ("maintenance requirement", money(m.get("maintenance"))), ("free collateral", money(m.get("free_collateral"))),
        ("margin ratio", ppm_pct(m.get("margin_ratio_ppm")) if _int(m.get("margin_ratio_ppm")) != -1 else "no equity"),
        ("liquidatable", _yes(m.get("liquidatable"))),
    ]
    liq = m.get("liquidation_prices")
    if isinstance(liq, dict):
        for asset, px in sorted(liq.items(), key=lambda kv: str(kv[0])):
            rows.append((f"liquidation price {f.asset_name(asset)}", "none" if px is None else money(px)))
    unwind = m.get("unwind_order")
    if isinstance(unwind, list):
        rows.append(("unwind order", ", ".join(f.market_name(x) for x in unwind) or "default (largest risk first)"))
    dead = m.get("dead_man")
    if isinstance(dead, dict):
        deadline = dead.get("deadline_ms")
        rows.append(("dead-man switch", "off" if deadline is None else f"cancels all orders at {_s(deadline)} ms"))
        rows.append(("dead-man changes today", f"{_s(dead.get('used_today'))} of {_s(dead.get('per_day_limit'))}"))
    known = {"equity", "initial", "maintenance", "free_collateral", "margin_ratio_ppm", "liquidatable",
             "liquidation_prices", "unwind_order", "balances", "positions", "dead_man"}
    rows += [(k, v) for k, v in m.items() if k not in known and not isinstance(v, (list, dict))]
    return rows


def print_pools(doc: dict[str, Any], cat: Catalog | None) -> None:
    """Fits 80 columns: amounts in asset units, yearly rates as percentages; the utilization
    cap goes in the title when every pool has the same (--json has every field)."""
    f = Fmt(cat)
    pools = [p for p in doc.get("pools") or [] if isinstance(p, dict)]
    caps = {p.get("utilization_cap_ppm") for p in pools}
    one_cap = len(caps) == 1
    title = f"lending pools at height {_s(doc.get('height'))}, rates a year"
    if one_cap and pools:
        title += f", utilization cap {ppm_pct(caps.pop(), 0)}"
    t = narrow_table(title)
    cols = ["asset", "supplied", "borrowed", "available", "util", "borrow", "supply"] + ([] if one_cap else ["cap"])
    for col in cols:
        t.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    for p in pools:
        asset = p.get("asset")
        row = [_s(p.get("symbol") or f.asset_name(asset)), f.amount(asset, p.get("supplied")),
               f.amount(asset, p.get("borrowed")), f.amount(asset, p.get("available")),
               ppm_pct(p.get("utilization_ppm"), 1), ppm_pct(p.get("borrow_rate_ppm")), ppm_pct(p.get("supply_rate_ppm"))]
        if not one_cap:
            row.append(ppm_pct(p.get("utilization_cap_ppm"), 0))
        t.add_row(*row)
    console().print(t)


def print_funding(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    t = narrow_table(f"prices and funding at height {_s(doc.get('height'))} "
                     "(funding index: quote per base unit, cumulative)")
    for col in ("market", "index", "mark", "last", "funding index", "premium", "next funding (UTC)"):
        t.add_column(col, justify="left" if col == "market" else "right", no_wrap=col != "next funding (UTC)")
    for x in doc.get("markets") or []:
        mid = x.get("market")
        perp = x.get("kind") == "perp" or "funding_index" in x
        marked = perp or "mark_price" in x  # a future has a mark, no funding
        t.add_row(_s(x.get("symbol") or f.market_name(mid)), f.quote_amount(mid, x.get("index_price")),
                  f.quote_amount(mid, x.get("mark_price")) if marked else "-",
                  f.price(mid, x.get("last_price_ticks")) if _int(x.get("last_price_ticks")) else "-",
                  f.per_base(mid, x.get("funding_index")) if perp else "-",
                  ppb_pct(x.get("premium_avg_ppb")) if perp else "-",
                  _short_time(x.get("next_funding_ms")) if perp else "-")
    console().print(t)


def print_oracle(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    coll = collateral_of(cat)

    def px(v: Any) -> str:
        n = _int(v)
        return _s(v) if coll is None or n is None else coll.from_units(n)

    t = narrow_table(f"oracle at height {_s(doc.get('height'))}" + (f" (prices in {coll.symbol})" if coll else ""))
    for col in ("asset", "price", "index price", "updated (UTC)", "submissions"):
        t.add_column(col, justify="left" if col == "asset" else "right", no_wrap=True)
    for x in doc.get("assets") or []:
        subs = x.get("submissions")
        t.add_row(_s(x.get("symbol") or f.asset_name(x.get("asset"))), px(x.get("price")), px(x.get("index_price")),
                  _short_time(x.get("time_ms")), str(len(subs)) if isinstance(subs, list) else _s(subs))
    console().print(t)


def print_markets(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    t = Table(title="markets", title_justify="left")
    rows = doc.get("markets") or []
    dated = any(isinstance(m, dict) and m.get("expiry_ms") for m in rows)  # futures: one more column
    for col in ("id", "symbol", "kind", "base", "quote", "tick", "lot", "min notional", "max lev", "last price",
                *(("expiry (UTC) / settlement",) if dated else ())):
        t.add_column(col)
    for m in rows:
        info = f.market(m.get("id"))
        t.add_row(_s(m.get("id")), _s(m.get("symbol")), _s(m.get("kind")), _s(info.base.symbol if info else m.get("base")),
                  _s(info.quote.symbol if info else m.get("quote")),
                  info.tick_text if info else _s(m.get("tick_size")), info.lot_text if info else _s(m.get("lot_size")),
                  f.quote_amount(m.get("id"), m.get("min_notional")), _s(m.get("max_leverage")),
                  f.price(m.get("id"), m.get("last_price")) if m.get("last_price") is not None else "-",
                  *((_expiry_text(f, m),) if dated else ()))
    console().print(t)


def _expiry_text(f: Fmt, m: dict[str, Any]) -> str:
    """A future's expiry, and once settled its settlement price; "-" for other markets."""
    if not m.get("expiry_ms"):
        return "-"
    text = _short_time(m.get("expiry_ms"))
    if m.get("settled"):
        text += f" settled at {f.quote_amount(m.get('id'), m.get('settlement_price'))}"
    return text


# ---------------------------------------------------------------------------- history, candles
def _history_detail(e: dict[str, Any], f: Fmt, me: str) -> str:
    """One history entry in words, amounts in human units where the catalog knows them."""
    kind = e.get("type")
    mid = e.get("market")
    if kind == "fill":
        maker = e.get("maker") == me
        taker_buys = e.get("side") == "buy"
        side = ("sell" if taker_buys else "buy") if maker else ("buy" if taker_buys else "sell")
        fee = e.get("maker_fee") if maker else e.get("taker_fee")
        return (f"{side} {f.size(mid, e.get('size'))} {f.market_name(mid)} @ {f.price(mid, e.get('price'))} "
                f"({'maker' if maker else 'taker'}, fee {f.quote_amount(mid, fee)}, oid "
                f"{e.get('maker_oid') if maker else e.get('taker_oid')})")
    if kind == "cancel":
        return (f"order {e.get('oid')} on {f.market_name(mid)}: {f.size(mid, e.get('remaining'))} cancelled "
                f"({e.get('reason')})")
    if kind in ("deposit", "withdraw", "borrow", "repay"):
        return f"{f.amount(e.get('asset'), e.get('amount'))} {f.asset_name(e.get('asset'))}"
    if kind == "transfer":
        out = e.get("account") == me
        other = e.get("counterparty") if out else e.get("account")
        return (f"{'sent' if out else 'received'} {f.amount(e.get('asset'), e.get('amount'))} "
                f"{f.asset_name(e.get('asset'))} {'to' if out else 'from'} {short(other, 14)}")
    if kind == "funding_payment":
        return (f"{f.market_name(mid)}: funding paid {f.quote_amount(mid, e.get('funding'))}, "
                f"pnl realized {f.quote_amount(mid, e.get('pnl'))}")
    if kind == "interest":
        amount = _s(e.get("amount"))
        earned = not amount.startswith("-")
        shown = amount if earned else amount[1:]
        return (f"interest {'earned' if earned else 'paid'} {f.amount(e.get('asset'), shown)} "
                f"{f.asset_name(e.get('asset'))} (APR {int(e.get('rate_ppm') or 0) / 10_000:.2f}%)")
    if kind == "adl":
        role = "closed" if e.get("account") == me else "counterparty of"
        return f"{role} {f.size(mid, e.get('lots'))} {f.market_name(mid)} (notional {f.quote_amount(mid, e.get('notional'))})"
    rest = {k: v for k, v in e.items() if k not in ("type", "height", "seq", "time_ms", "account")}
    return ", ".join(f"{k}={_s(v)}" for k, v in rest.items())


def print_history(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    me = _s(doc.get("address"))
    console().print(f"history of {me} (newest first)")
    t = narrow_table("")
    for col in ("time (UTC)", "height", "kind", "detail"):
        t.add_column(col, no_wrap=col != "detail")
    for e in doc.get("entries") or []:
        t.add_row(_short_time(e.get("time_ms")), _s(e.get("height")), _s(e.get("type")), _history_detail(e, f, me))
    c = console()
    c.print(t)
    if doc.get("next"):
        c.print(f"more: --before {doc['next']}")


def print_order_history(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    t = narrow_table(f"finished orders of {_s(doc.get('address'))} (newest first)")
    for col in ("oid", "market", "status", "reason", "height"):
        t.add_column(col, no_wrap=True)
    for o in doc.get("orders") or []:
        t.add_row(_s(o.get("oid")), f.market_name(o.get("market")), _s(o.get("status")), _s(o.get("reason")),
                  _s(o.get("height")))
    console().print(t)


def print_candles(doc: dict[str, Any], cat: Catalog | None) -> None:
    f = Fmt(cat)
    mid = doc.get("market")
    t = narrow_table(f"{f.market_name(mid)} {_s(doc.get('interval'))} candles")
    for col in ("open time (UTC)", "open", "high", "low", "close", "volume", "trades", "quote volume"):
        t.add_column(col, justify="left" if col.startswith("open time") else "right", no_wrap=True)
    for k in doc.get("candles") or []:
        t.add_row(_short_time(k.get("t")), f.price(mid, k.get("o")), f.price(mid, k.get("h")),
                  f.price(mid, k.get("l")), f.price(mid, k.get("c")), f.size(mid, k.get("v")), _s(k.get("n")),
                  f.quote_amount(mid, k.get("quote_volume")))
    console().print(t)
