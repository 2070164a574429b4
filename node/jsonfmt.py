"""JSON views of blocks, receipts and exchange state for RPC (see node/API.md).

Bytes go out as hex (addresses as 0x-hex), and integers beyond 2^53 as decimal strings so
JavaScript clients never lose precision.
"""

from __future__ import annotations

from typing import Any

from state.errors import Code
from state.events import fields_of
from state.keys import address_to_text

JS_SAFE = 1 << 53


def num(value: int) -> int | str:
    return value if -JS_SAFE <= value <= JS_SAFE else str(value)


def code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return "UNKNOWN"


def fill_from_list(f: list[Any]) -> dict[str, Any]:
    market, price, size, taker_is_buy, maker, taker, maker_oid, taker_oid, maker_fee, taker_fee = f
    return {
        "market": market, "price": num(price), "size": num(size), "side": "buy" if taker_is_buy else "sell",
        "maker": address_to_text(maker), "taker": address_to_text(taker), "maker_oid": maker_oid,
        "taker_oid": taker_oid, "maker_fee": num(maker_fee), "taker_fee": num(taker_fee),
    }


def receipt_from_list(r: list[Any]) -> dict[str, Any]:
    tx_hash, code, message, signer, kind, results = r
    return {
        "tx_hash": tx_hash.hex(), "code": code, "name": code_name(code), "message": message,
        "signer": address_to_text(signer) if signer else None, "kind": kind,
        "results": [result_from_list(r) for r in results],
    }


def result_from_list(r: list[Any]) -> dict[str, Any]:
    """One action's result; ``avg_price`` (ticks, a decimal string: the size-weighted mean of
    its fills, exact to 6 places) when it traded. Results stored before ``cancelled`` and
    ``clipped`` existed have 7 fields and read as zero for both."""
    c, m, oid, status, filled, resting, fills = r[:7]
    cancelled, clipped = (r[7], r[8]) if len(r) >= 9 else (0, 0)
    out = {"code": c, "name": code_name(c), "message": m, "oid": oid, "status": status,
           "filled": num(filled), "resting": num(resting), "cancelled": num(cancelled), "clipped": num(clipped),
           "fills": [fill_from_list(f) for f in fills]}
    if fills and filled:
        out["avg_price"] = _ratio_text(sum(f[1] * f[2] for f in fills), sum(f[2] for f in fills))
    return out


def _ratio_text(num_: int, den: int, places: int = 6) -> str:
    """num_/den rounded half-up to ``places`` decimals, trailing zeros dropped."""
    scaled = (num_ * 10**places * 2 + den) // (2 * den)
    whole, frac = divmod(scaled, 10**places)
    text = f"{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")
    return text


def event_from_list(e: list[Any]) -> dict[str, Any]:
    kind = e[0]
    if kind == "fill":
        return {"type": "fill", **fill_from_list(e[1:])}
    if kind == "cancel":
        market, oid, owner, remaining, reason = e[1:]
        return {"type": "cancel", "market": market, "oid": oid, "owner": address_to_text(owner),
                "remaining": num(remaining), "reason": reason}
    if kind == "interest" and len(e) == 5:  # node/interest.py: hourly, not a block event
        _, account, asset, amount, rate = e
        return {"type": "interest", "account": address_to_text(account), "asset": asset, "amount": num(amount),
                "rate_ppm": rate}
    names = fields_of(e)
    if names is None or len(names) != len(e):  # a kind this version does not know
        return {"type": kind, "data": [_json_value("", x) for x in e[1:]]}
    return {"type": kind, **{n: _json_value(n, x) for n, x in zip(names[1:], e[1:], strict=True)}}


def _json_value(name: str, x: Any) -> Any:
    """An event field as JSON: accounts as addresses, other bytes as hex, big ints as strings."""
    if isinstance(x, bytes):
        return address_to_text(x) if name in ("account", "counterparty") else x.hex()
    if isinstance(x, int) and not isinstance(x, bool):
        return num(x)
    return x


def results_json(height: int, record: list[Any]) -> dict[str, Any]:
    app_hash, receipts, events, digests = record
    return {
        "height": height,
        "app_hash": app_hash.hex(),
        "receipts": [receipt_from_list(r) for r in receipts],
        "events": [{"tx_index": i, **event_from_list(e)} for i, e in events],
        "write_digests": [[k.hex(), d.hex()] for k, d in digests],
    }


def header_json(h: Any) -> dict[str, Any]:
    out = {
        "chain_id": h.chain_id, "height": h.height, "round": h.round, "time_ms": h.time_ms,
        "prev_block_hash": h.prev_block_hash.hex(), "prev_app_hash": h.prev_app_hash.hex(),
        "txs_root": h.txs_root.hex(), "proposer": h.proposer.hex(),
    }
    if h.evidence_root:
        out["evidence_root"] = h.evidence_root.hex()
    return out


def certificate_json(c: Any) -> dict[str, Any]:
    return {"height": c.height, "round": c.round, "block_hash": c.block_hash.hex(),
            "precommits": [{"validator": v.hex(), "signature": s.hex()} for v, s in c.precommits]}


def block_json(block: Any, cert: Any, raw_block: bytes, raw_cert: bytes) -> dict[str, Any]:
    out = {
        "height": block.height, "hash": block.hash.hex(), "header": header_json(block.header),
        "txs": [t.hex() for t in block.txs], "certificate": certificate_json(cert),
        "raw_block": raw_block.hex(), "raw_certificate": raw_cert.hex(),
    }
    if block.evidence:  # only blocks that carry some (consensus/evidence.py)
        from consensus.evidence import DuplicateVote

        out["evidence"] = [evidence_json(DuplicateVote.decode(raw)) for raw in block.evidence]
    return out


def evidence_json(ev: Any) -> dict[str, Any]:
    """One equivocation (a ``DuplicateVote``): who, where, and the two signed votes."""
    return {
        "hash": ev.hash.hex(), "validator": ev.validator.hex(), "height": ev.height, "round": ev.round,
        "type": ev.type.name.lower(),
        "votes": [{"block_hash": v.block_hash.hex(), "signature": v.signature.hex()} for v in (ev.vote_a, ev.vote_b)],
        "raw": ev.encode().hex(),
    }


def view_json(value: Any) -> Any:
    """A state view (plain data) as JSON: integers beyond 2^53 as strings, bytes as hex,
    dict keys as text, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return num(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): view_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [view_json(v) for v in value]
    return value


def account_json(ex: Any, address: bytes, height: int) -> dict[str, Any]:
    """The ``/account`` answer (node/API.md) from the live exchange state."""
    from state import views

    summary = view_json(views.margin_summary(ex, address))
    links = views.account_links(ex, address)

    def text(a: bytes | None) -> str | None:
        return address_to_text(a) if a else None

    return {
        "address": address_to_text(address), "height": height,
        "balances": [view_json(b) for b in views.balances_view(ex, address)],
        "positions": summary.get("positions", []),
        "open_orders": [view_json(o) for o in views.open_orders_view(ex, address)],
        "margin": summary,
        "agents": [{**view_json(a), "address": text(a["address"])} for a in links["agents"]],
        "sub_accounts": [{**view_json(x), "address": text(x["address"])} for x in links["sub_accounts"]],
        "master": text(links["master"]), "agent_of": text(links["agent_of"]),
    }
