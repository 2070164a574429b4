"""Portfolio margin: the one place that decides what an account can afford.

Everything is in collateral smallest units (micro-USDC); prices as in state/prices.py.

Equity (account value)::

    equity = sum over assets of balance * index price      (a positive balance rounds down,
                                                             a debt rounds up; USDC at par)
           + sum over perps of size * mark - signed entry   (unrealized PnL)
           - sum over perps of size * (funding index - position's index)   (funding owed)

Requirement (initial with S_IM, haircut_im, *_im add-ons; maintenance with the *_mm ones).
For each underlying u (every non-collateral asset the account touches):

- ``Ns`` = spot balance of u valued at the index price (signed; borrowed u is negative),
  ``P`` = net perp notional on u at mark (signed), ``Pg`` = sum of |perp legs|.
- Offsets: ``H = min(|Ns|, |P|)`` when spot and perps have opposite signs (the hedged
  part), plus ``(Pg - |P|) / 2`` between opposite perp legs.
- Residuals: ``Pr = P`` moved toward zero by H, ``Sr = Ns`` moved toward zero by H.
- Scenario loss: shock the price by k * S for k in {0, +-1/3, +-2/3, +-1}; the residual perp
  moves by S per unit move, the residual spot by (1 - haircut) (the haircut is the spot
  collateral's own shock, applied only to the part that does not hedge a perp, so it never
  double-counts with the scenario); worst loss = max_k -(k * (S * Pr + (1 - h) * Sr)).
- Hedge add-on: ``hedge_ppm * H`` (1% of the offset notional for initial margin).
- Size add-on: ``|Ns + P| * size_ppm * sqrt(|Ns + P| / size_ref)`` (the add-on's fraction
  grows with the square root of the notional, as FTX's IMF factor did).

Plus, for every debt: ``debt value * borrow rate * days / 365`` (3 days initial, 1 day
maintenance). An account with no debt and no perp position (and, for initial margin, no
open order that could create one) has no liabilities and needs nothing.

Open orders count at their worst case for initial margin: per underlying, the requirement
is the worst of (no order fills, every bid on u fills, every ask on u fills), each fill at
its limit price with the largest fee (its loss against the mark/index counted, a gain not:
a bid below the index does not fund itself). The borrow add-on counts today's debts only.
Spot orders that would have to borrow (their spend beyond the balance left after the other
open orders) also need the pool to lend it now (cash and utilization cap). So a hedged
account (long 1 BTC spot, short 1 BTC perp) needs only the hedge and size add-ons,
about 1% of one leg, where the two legs apart need about 10% (5% + 5%).

Pre-trade: an order, a withdrawal or a borrow is accepted only when equity >= initial
requirement afterwards, or when it strictly reduces risk (a perp order within the
position's reduce capacity; a spot order that only shrinks a balance or a debt and leaves
a smaller shortfall if it fills). A rejection carries a code and the shortfall:
INSUFFICIENT_MARGIN, or INSUFFICIENT_BALANCE for a spot order that needed to borrow.
The borrow add-on uses the higher of the pool's rate and the rate at its live utilization
(after the borrow being checked).

Assets with no index (no oracle price and no genesis initial price; state/prices.py): such
an asset counts as zero collateral, and a liability in it (a debt, open asks beyond the
balance, any perp order on it) gets an initial requirement no equity meets
(``UNPRICED_REQUIREMENT``), reported as STALE_PRICE: it can be bought with cash and sold
or withdrawn from a balance, never borrowed, sold short or traded as a perp. An order's
own price never values what it trades.

The ``can_*`` functions and ``margin_summary`` are dry runs over exactly these functions,
for RPC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from state import lapse
from state.errors import Code, TxError
from state.genesis import MarketSpec
from state.muldiv import WORDS, isqrt, mul_div, mul_div_square, mul_one, mul_one_ceil
from state.prices import compute_index, mark_price
from state.units import DAYS_PER_YEAR, PERP_SOURCE, PPM

if TYPE_CHECKING:
    from state.account import Account
    from state.book import Order
    from state.exchange import Exchange

GRID: Final = (-3, -2, -1, 0, 1, 2, 3)  # shock multiples k = j / 3

# (market, is_buy, lots, notional) of an order counted at its worst case or assumed filled
OrderLeg = tuple[int, bool, int, int]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fee(notional: int, ppm: int) -> int:
    """Fees are debits: rounded up."""
    return -(-notional * ppm // PPM)


def value_of(amount: int, px: int, unit: int) -> int:
    """``amount`` smallest units at ``px`` per whole unit: credits round down, debts up
    (both are the floor: a debt's value is negative)."""
    return mul_div(amount, px, unit)


def reduce_capacity(acct: Account, market: int, is_buy: bool) -> int:
    """How many lots an order on this side can trade while only reducing the position."""
    pos = acct.positions.get(market)
    if pos is None or pos.size == 0 or (pos.size > 0) == is_buy:
        return 0
    return abs(pos.size)


# ---------------------------------------------------------------------------------- prices
def asset_price(ex: Exchange, asset: int) -> int:
    """Index price of ``asset`` (the oracle's, else the genesis initial price; see
    state/prices.py), 0 when it has none. Never an order's own price: an order must not
    price what it trades, or a $1 bid would value the short sale that fills it at $1."""
    px = ex.index_px[asset]
    if px:
        return px
    return compute_index(ex, asset)


def perp_price(ex: Exchange, market: int) -> int:
    """The mark of ``market`` (0 when its underlying has no index), as ``asset_price``."""
    return mark_price(ex, market)


def unpriced(ex: Exchange, asset: int) -> bool:
    """An asset with no index: zero collateral, no borrow, no short sale, no perp position."""
    return asset != ex.collateral_asset and not asset_price(ex, asset)


def _unpriced_liability(ex: Exchange, acct: Account, add: OrderLeg | None, drop: Order | None,
                        d_balance: tuple[int, int] | None, orders: bool) -> bool:
    """Initial margin's check for assets with no index, whose value the engine cannot know,
    so no amount of equity covers a liability in one: a debt; with ``orders``, open asks
    (with ``add``, less ``drop``) beyond the balance (a short sale once they fill), or any
    perp order on it. ``assess`` runs it only while some asset has no index."""
    for a in range(len(ex.unit)):
        if not unpriced(ex, a):
            continue
        bal = acct.balance(a)
        if d_balance is not None and d_balance[0] == a:
            bal += d_balance[1]
        if bal < 0 or ex.pools.debt(acct, a):
            return True
        if not orders:
            continue
        legs = [(m, v[0], v[2]) for m, v in acct.orders.items()]
        if add is not None:
            legs.append((add[0], add[2] if add[1] else 0, 0 if add[1] else add[2]))
        if drop is not None:
            legs.append((drop.market, -drop.size if drop.is_buy else 0, 0 if drop.is_buy else -drop.size))
        asks = 0
        perp_lots = 0
        for m, bid_lots, ask_lots in legs:
            spec = ex.markets[m]
            if spec.base != a:
                continue
            if spec.is_derivative:
                perp_lots += bid_lots + ask_lots
            else:
                asks += ask_lots * spec.lot_size
        if perp_lots > 0 or asks > bal:
            return True
    return False


UNPRICED_REQUIREMENT: Final = 1 << 100  # no equity covers a liability in an asset with no index


# ---------------------------------------------------------------------------------- engine
class Assessment:
    """Equity and requirement of one account, with the per-underlying detail kept for
    summaries and the liquidation watch."""

    __slots__ = ("debt_value", "equity", "gross", "liabilities", "perp_gross", "requirement", "sources",
                 "underlyings")

    def __init__(self) -> None:
        self.equity = 0
        self.requirement = 0
        self.liabilities = False
        self.gross = 0  # sum of |notional| of every priced leg
        self.perp_gross = 0
        self.debt_value = 0
        self.sources: list[tuple[int, int, int]] = []  # (source id, price, |exposure|) for the watch
        self.underlyings: dict[int, list[int]] = {}  # u -> [Ns, P, Pg, requirement]

    @property
    def shortfall(self) -> int:
        return self.requirement - self.equity


def scenario_loss(move: int) -> int:
    """Worst loss over the shock grid k in {0, +-1/3, +-2/3, +-1} of a position whose PnL
    per unit of shock is ``move`` / PPM: max over j of -(j / 3) * move. Every instrument the
    exchange lists is linear in the price, so the worst grid point is an end (k = -1 or +1),
    which is what this evaluates (exactly the grid's maximum); a non-linear instrument would
    evaluate its PnL at each of the seven points."""
    worst = 3 * move if move > 0 else -3 * move  # = max(-j * move for j in GRID)
    return -(-worst // (3 * PPM))


def shock_loss(shock: int, pr: int, cut: int, sr: int) -> int:
    """``scenario_loss(shock * pr + cut * sr)``: ``ceil(|shock*pr + cut*sr| / PPM)``."""
    return shock_loss_words(shock, pr, cut, sr) if WORDS else scenario_loss(shock * pr + cut * sr)


def shock_loss_words(shock: int, pr: int, cut: int, sr: int) -> int:
    """``shock_loss`` without forming the products (each passes 2**62 from about $90M of
    notional; state/muldiv.py says why that matters). With ``pr = pq*PPM + prr`` and
    ``sr = sq*PPM + srr``, the sum is ``t*PPM + rr`` where ``t = shock*pq + cut*sq + rem //
    PPM``, ``rem = shock*prr + cut*srr`` and ``0 <= rr < PPM``: its ceiling over PPM is
    ``t + (rr > 0)`` when ``t >= 0``, and the magnitude's is ``-t`` when ``t < 0``. Exact for
    all ints."""
    pq = pr // PPM
    sq = sr // PPM
    rem = shock * (pr - pq * PPM) + cut * (sr - sq * PPM)
    rq = rem // PPM
    t = shock * pq + cut * sq + rq
    if t >= 0:
        return t + 1 if rem != rq * PPM else t
    return -t


class RequirementParams:
    """One underlying's parameters for one requirement (initial or maintenance), made once
    per exchange (``Exchange.im_params``, ``mm_params``). A slotted class rather than a
    tuple: compiled, its int fields are read unboxed, where a tuple taken from a list was
    unpacked (and its ints boxed again) on every call."""

    __slots__ = ("cut", "hedge_ppm", "shock", "size_ppm", "size_ref", "size_scale")

    def __init__(self, shock: int, cut: int, hedge_ppm: int, size_ppm: int, size_ref: int) -> None:
        self.shock = shock  # S, ppm
        self.cut = cut  # 1 - haircut, ppm
        self.hedge_ppm = hedge_ppm
        self.size_ppm = size_ppm
        self.size_ref = size_ref
        self.size_scale = size_scale(size_ref)


def underlying_requirement(ex: Exchange, u: int, ns: int, p: int, pg: int, initial: bool) -> int:
    """Scenario loss + hedge add-on + size add-on of one underlying (see the module doc).

    Computed every time, not memoized: a memo keyed by the five arguments (a new tuple
    and up to four new int objects per look-up) executed fewer instructions than the
    computation but took more time, and so did a memo of ``_leg_effect`` (both measured
    in interleaved runs of ``bench.state_apply``'s flow; see the README)."""
    return _underlying_requirement((ex.im_params if initial else ex.mm_params)[u], ns, p, pg)


def _underlying_requirement(prm: RequirementParams, ns: int, p: int, pg: int) -> int:
    if ns > 0 > p:
        h = ns if ns < -p else -p
        pr, sr = p + h, ns - h
    elif ns < 0 < p:
        h = -ns if -ns < p else p
        pr, sr = p - h, ns + h
    else:
        h, pr, sr = 0, p, ns
    ap = p if p >= 0 else -p
    h += (pg - ap) // 2
    req = shock_loss(prm.shock, pr, prm.cut, sr)  # residual perp moves by S, residual spot by 1 - haircut
    if h:
        req += -(-h * prm.hedge_ppm // PPM)
    net = ns + p
    if net < 0:
        net = -net
    if net and prm.size_ppm:
        req += _size_addon(net, prm.size_ppm, prm.size_ref, prm.size_scale)
    return req


def size_addon(net: int, size_ppm: int, size_ref: int) -> int:
    """``ceil(net * size_ppm * isqrt(net * 10**12 // size_ref) / 10**12)``, computed in
    steps that stay below 2**62 for notionals up to about 10**13 (the plain formula's
    ``net * 10**12`` alone is ~10**25, an arbitrary-precision number several times slower
    to multiply and divide): the reference usually divides 10**12, and the final product
    is split at 10**12. ``tests/state/test_margin.py`` checks it equals the formula."""
    return _size_addon(net, size_ppm, size_ref, size_scale(size_ref))


def size_scale(size_ref: int) -> int:
    """10**12 / size_ref when that is exact, else 0: made once per parameter set, so the
    root below multiplies by it instead of forming ``net * 10**12``."""
    return 10**12 // size_ref if 10**12 % size_ref == 0 else 0


def size_root(net: int, size_ref: int, scale: int) -> int:
    """``isqrt(net * 10**12 // size_ref)``, with ``scale`` from ``size_scale``: the size
    add-on's root, and the liquidation watch's bound on its rate."""
    if scale:
        return isqrt(net * scale)
    return isqrt(net * 10**12 // size_ref)


def _size_addon(net: int, size_ppm: int, size_ref: int, scale: int) -> int:
    """``size_addon`` with ``scale`` from ``size_scale``."""
    root = size_root(net, size_ref, scale)
    scaled = net * size_ppm
    whole = scaled // 10**12
    part = scaled - whole * 10**12
    return whole * root - mul_div_square(-part, root, 10**6)  # + ceil(part * root / 10**12)


class _LegEffect:
    """What filling one order leg does (``_leg_effect``): its underlying, the change of spot
    value, perp value, equity and USDC; plus the running totals ``assess`` keeps over the
    open-order legs. One per ``assess`` call, refilled per leg: compiled, its int fields are
    unboxed, where the 5-tuple it replaced boxed each value and allocated per leg."""

    __slots__ = ("equity", "perp", "perp_leg", "spend", "spot", "u", "usdc")

    def __init__(self) -> None:
        self.u = 0
        self.spot = 0
        self.perp = 0
        self.equity = 0
        self.usdc = 0
        self.spend = 0  # USDC (with the largest fee) that every spot bid filling would spend
        self.perp_leg = False  # a perp leg with a value: the account has liabilities


class LegInfo:
    """What the margin hot path reads of a market, precomputed once from genesis
    (``Exchange.minfo``): a slotted record, whose int fields the compiled build keeps unboxed."""

    __slots__ = ("base", "is_perp", "lot_size", "max_leverage", "tick_size", "tick_value", "unit")

    def __init__(self, is_perp: bool, base: int, lot_size: int, unit: int, tick_size: int, tick_value: int,
                 max_leverage: int = 1) -> None:
        self.is_perp = is_perp
        self.max_leverage = max_leverage  # derivatives: the largest leverage an account may choose
        self.base = base  # the underlying asset
        self.lot_size = lot_size  # base smallest units per lot
        self.unit = unit  # base smallest units per whole unit
        self.tick_size = tick_size  # collateral units per whole unit per tick
        self.tick_value = tick_value  # quote units per tick per lot


def _leg_effect(ex: Exchange, m: int, is_buy: bool, lots: int, notional: int, out: _LegEffect) -> None:
    """Fill ``out`` with what filling the leg (market, side, lots, notional) does. A fill at
    a better price than the mark/index is not counted as a gain (min(..., 0)): an order's
    worst case never adds equity, so a stale or pushed price cannot fund it."""
    info = ex.minfo[m]
    is_perp, u, lot_size, unit = info.is_perp, info.base, info.lot_size, info.unit
    cost = -(-notional * ex.max_fee_ppm // PPM)
    px = ex.leg_px[m]
    if not px:
        if is_perp:
            px = perp_price(ex, m)
        else:
            px = asset_price(ex, u)
    units = lots * lot_size
    if is_buy:
        v = mul_div(units, px, unit)
        gain = v - notional
        usdc = -notional - cost
    else:
        v = mul_div(-units, px, unit)
        gain = notional + v
        usdc = notional - cost
    out.u = u
    out.equity = (gain if gain < 0 else 0) - cost
    if is_perp:
        out.spot, out.perp, out.usdc = 0, v, -cost
    else:
        out.spot, out.perp, out.usdc = v, 0, usdc


def _count_leg(under: list[_Underlying | None], eff: _LegEffect, is_buy: bool) -> None:
    """Add the leg ``eff`` describes to its underlying's every-bid or every-ask sums."""
    agg = _underlying(under, eff.u)
    agg.legs = True
    dpv = eff.perp
    if is_buy:
        agg.b_spot += eff.spot
        agg.b_perp += dpv
        agg.b_gross += dpv if dpv > 0 else -dpv
        agg.b_eq += eff.equity
    else:
        agg.a_spot += eff.spot
        agg.a_perp += dpv
        agg.a_gross += dpv if dpv > 0 else -dpv
        agg.a_eq += eff.equity
    if dpv:
        eff.perp_leg = True
    elif is_buy:
        eff.spend -= eff.usdc


class _Underlying:
    """One underlying's sums inside one ``assess`` call: spot value ``ns``, net perp value
    ``p``, gross perp value ``pg``, and what filling every bid (``b*``) or every ask (``a*``)
    on it would change (spot, perp, gross perp, equity).

    Why a slotted class: compiled, its int fields are stored unboxed, so the per-leg
    additions do not allocate."""

    __slots__ = ("a_eq", "a_gross", "a_perp", "a_spot", "b_eq", "b_gross", "b_perp", "b_spot", "legs", "lev", "ns", "p",
                 "pg")

    def __init__(self) -> None:
        self.ns = 0
        self.p = 0
        self.pg = 0
        self.b_spot = 0
        self.b_perp = 0
        self.b_gross = 0
        self.b_eq = 0
        self.a_spot = 0
        self.a_perp = 0
        self.a_gross = 0
        self.a_eq = 0
        self.legs = False  # an open (or added) order leg is on this underlying
        self.lev = 0  # the lowest leverage of the derivative markets the account uses on it (0: none)


def _underlying(under: list[_Underlying | None], u: int) -> _Underlying:
    got = under[u]
    if got is None:
        got = under[u] = _Underlying()
    return got


class _Sums:
    """The running sums of one ``assess`` call, shared by its steps (a slotted class: the
    compiled build keeps its fields native, so splitting ``assess`` into steps costs calls,
    not boxing)."""

    __slots__ = ("addon_value", "liab", "usdc")

    def __init__(self) -> None:
        self.addon_value = 0  # debt value x borrow rate, summed (ppm-year scaled)
        self.usdc = 0  # the collateral balance (what order spending is compared with)
        self.liab = False  # has the account anything it could owe?


def assess(
    ex: Exchange,
    acct: Account,
    initial: bool,
    *,
    orders: bool = False,
    add: OrderLeg | None = None,
    drop: Order | None = None,
    fill: OrderLeg | None = None,
    d_balance: tuple[int, int] | None = None,
    d_debt: tuple[int, int] | None = None,
    detail: bool = False,
) -> Assessment:
    """Equity and requirement of ``acct``.

    ``orders``: count open orders (and ``add``, less ``drop``) at their worst case.
    ``fill``: as if this order had just filled completely at its limit price.
    ``d_balance``: (asset, delta) applied to the balance first (a withdrawal).
    ``d_debt``: (asset, extra debt) that leaves the balance unchanged (a borrow).
    ``detail``: keep the per-underlying detail and the prices used (summaries, the watch).

    The steps: balances and debts (``_count_balances``), perp positions
    (``_count_positions``), a hypothetical fill (``_count_fill``), open orders at their worst
    case (``_count_orders``), then the requirement per underlying (``_requirement``).
    """
    res = Assessment()
    sums = _Sums()
    # an underlying is present (not None) once a spot value, a perp leg or an order leg is on it
    under: list[_Underlying | None] = [None] * len(ex.unit)
    _count_balances(ex, acct, res, sums, under, d_balance, d_debt, detail)
    _count_positions(ex, acct, res, sums, under, detail)
    if fill is not None:
        _count_fill(ex, fill, res, sums, under)
    if orders and (acct.orders or add is not None):
        _count_orders(ex, acct, add, drop, sums, under)
    blocked = initial and 0 in ex.index_px and _unpriced_liability(ex, acct, add, drop, d_balance, orders)
    if blocked:
        sums.liab = True
    res.liabilities = sums.liab
    if not sums.liab:
        return res
    req = _requirement(ex, initial, sums.addon_value, under, res, detail)
    res.requirement = req + UNPRICED_REQUIREMENT if blocked else req
    return res


def _count_balances(ex: Exchange, acct: Account, res: Assessment, sums: _Sums, under: list[_Underlying | None],
                    d_balance: tuple[int, int] | None, d_debt: tuple[int, int] | None, detail: bool) -> None:
    """Every balance at its index price (a balance rounds down, a debt up), the debts' value
    and interest add-on, and each asset's net spot value on its underlying."""
    pools = ex.pools.by_asset
    index_px, unit_of = ex.index_px, ex.unit
    c = ex.collateral_asset
    equity = 0
    addon_value = 0
    gross = 0
    debt_value = 0
    liab = False
    scaled = acct.scaled
    idle = acct.idle
    bal_asset = d_balance[0] if d_balance is not None else -1
    debt_asset = d_debt[0] if d_debt is not None else -1
    for a in range(len(unit_of)):
        sh = scaled.get(a, 0)
        real = idle.get(a, 0)
        if not sh and not real and a != bal_asset and a != debt_asset:
            continue  # (an entry holding zero changes nothing below)
        pool = pools[a]
        debt = 0
        if sh > 0:
            real += mul_one(sh, pool.supply_index)
        elif sh < 0:
            debt = mul_one_ceil(-sh, pool.borrow_index)
            real -= debt
        if a == bal_asset and d_balance is not None:
            real += d_balance[1]
            if real < -debt:
                debt = -real
        extra = 0
        if a == debt_asset and d_debt is not None:
            extra = d_debt[1]
            debt += extra
        rate = 0
        if debt:  # the add-on uses the rate at the live utilization (with a borrow's extra debt)
            liab = True
            rate = pool.borrow_rate_ppm(pool.utilization_ppm(extra_debt=extra))
            if pool.rate_ppm > rate:
                rate = pool.rate_ppm
        if a == c:
            sums.usdc = real
            equity += real
            if debt:
                addon_value += debt * rate
                debt_value += debt
            continue
        if not real and not debt:
            continue
        px = index_px[a] or asset_price(ex, a)
        unit = unit_of[a]
        v = mul_div(real, px, unit)  # a balance rounds down, a debt up (floor of a negative)
        equity += v
        if v:
            _underlying(under, a).ns = v
            gross += v if v > 0 else -v
            if detail:
                res.sources.append((a, px, abs(v)))
        if debt:
            dv = -mul_div(-debt, px, unit)
            addon_value += dv * rate
            debt_value += dv
            if detail and not v:
                # a debt held idle has no net exposure now, but its interest makes one that
                # the price multiplies: the watch must still see this price move
                res.sources.append((a, px, dv))
    res.equity = equity
    res.gross = gross
    res.debt_value = debt_value
    sums.addon_value = addon_value
    sums.liab = liab


def _count_positions(ex: Exchange, acct: Account, res: Assessment, sums: _Sums, under: list[_Underlying | None],
                     detail: bool) -> None:
    """Every perp position at its mark: unrealized PnL and funding owed into equity, its
    value onto its underlying."""
    minfo, leg_px, mstate = ex.minfo, ex.leg_px, ex.mstate
    equity = 0
    perp_gross = 0
    for m, pos in acct.positions.items():
        size = pos.size
        if not size:
            continue
        mi = minfo[m]
        px = leg_px[m]
        if not px:
            px = perp_price(ex, m)
            if not px:
                px = ceil_div(pos.entry_notional * mi.tick_size, abs(size) * mi.tick_value)
        v = mul_div(size * mi.lot_size, px, mi.unit)
        entry = pos.entry_notional if size > 0 else -pos.entry_notional
        equity += v - entry - size * (mstate[m].funding_index - pos.funding_index)
        av = v if v > 0 else -v
        agg = _underlying(under, mi.base)
        agg.p += v
        agg.pg += av
        _use_leverage(agg, acct, m, mi)
        perp_gross += av
        if detail:
            res.sources.append((PERP_SOURCE + m, px, av))
        sums.liab = True
    res.equity += equity
    res.gross += perp_gross
    res.perp_gross = perp_gross


def _count_fill(ex: Exchange, fill: OrderLeg, res: Assessment, sums: _Sums,
                under: list[_Underlying | None]) -> None:
    """As if ``fill`` had just filled completely at its limit price."""
    eff = _LegEffect()
    _leg_effect(ex, fill[0], fill[1], fill[2], fill[3], eff)
    u, dsv, dpv = eff.u, eff.spot, eff.perp
    res.equity += eff.equity
    sums.usdc += eff.usdc
    short_spot = False
    if dsv:
        agg = _underlying(under, u)
        agg.ns += dsv
        short_spot = agg.ns < 0
    if dpv:
        agg = _underlying(under, u)
        agg.p += dpv
        agg.pg += dpv if dpv > 0 else -dpv
        sums.liab = True
    if sums.usdc < 0 or short_spot:
        sums.liab = True


def _without(drop: Order, tick_value: int, bl: int, bn: int, al: int, an: int) -> tuple[int, int, int, int]:
    """A market's open-order sums (bid lots, bid notional, ask lots, ask notional) less the
    order ``drop`` (one a modify replaces), which rests on that market."""
    dn = drop.price * drop.size * tick_value
    if drop.is_buy:
        return bl - drop.size, bn - dn, al, an
    return bl, bn, al - drop.size, an - dn


def _count_orders(ex: Exchange, acct: Account, add: OrderLeg | None, drop: Order | None,
                  sums: _Sums, under: list[_Underlying | None]) -> None:
    """Open orders (with ``add``, without ``drop``) at their worst case: per underlying,
    what filling all its bids, or all its asks, would do."""
    eff = _LegEffect()
    minfo = ex.minfo
    for m, (bl, bn, al, an) in acct.orders.items():  # sums and a minimum: the order cannot matter
        if drop is not None and drop.market == m:
            bl, bn, al, an = _without(drop, minfo[m].tick_value, bl, bn, al, an)
        if bl:
            _leg_effect(ex, m, True, bl, bn, eff)
            _count_leg(under, eff, True)
        if al:
            _leg_effect(ex, m, False, al, an, eff)
            _count_leg(under, eff, False)
        if (bl or al) and minfo[m].is_perp:
            _use_leverage(_underlying(under, minfo[m].base), acct, m, minfo[m])
    if add is not None:
        _leg_effect(ex, add[0], add[1], add[2], add[3], eff)
        _count_leg(under, eff, add[1])
        if minfo[add[0]].is_perp:
            _use_leverage(_underlying(under, eff.u), acct, add[0], minfo[add[0]])
    if eff.perp_leg or eff.spend > max(sums.usdc, 0):
        sums.liab = True
    if not sums.liab:
        for g in under:
            if g is not None and g.legs and g.ns + g.a_spot < 0:
                sums.liab = True  # asks beyond the balance: a short sale
                return


def _use_leverage(agg: _Underlying, acct: Account, m: int, mi: LegInfo) -> None:
    """Note that the account uses derivative market ``m`` on ``agg``'s underlying, at the
    leverage it chose there (``update_leverage``), else the market's maximum."""
    lev = acct.leverage.get(m, mi.max_leverage) if acct.leverage else mi.max_leverage
    if agg.lev == 0 or lev < agg.lev:
        agg.lev = lev


def leverage_floor(ns: int, p: int, lev: int) -> int:
    """The least initial requirement leverage allows on one underlying: its derivative value
    ``p`` not offset by its spot value ``ns`` (|p| less |ns| when they are of opposite
    signs, never below zero; |p| when of the same sign), over the lowest leverage of the
    derivative markets used on it, rounded up.

    Why not every position's notional: a perp hedged by the spot it shorts carries no price
    risk, and portfolio margin would lose its point; a perp that adds to a spot holding is
    floored on the perp alone (the spot is fully funded); spot beyond what hedges the perp
    is fully funded too and leaves none of the perp unhedged (so the floor never grows as
    the account buys spot against a short perp). So no account can hold more unhedged
    derivative exposure than the markets' leverage allows, hedge or not."""
    ap = p if p > 0 else -p
    if (ns > 0 > p) or (p > 0 > ns):
        an = ns if ns > 0 else -ns
        exposure = ap - an if ap > an else 0
    else:
        exposure = ap
    return -(-exposure // lev)


def _case_requirement(prm: RequirementParams, ns: int, p: int, pg: int, lev: int) -> int:
    """One case of an underlying: its scenario requirement, at least the leverage floor
    (``lev`` 0: none, the maintenance requirement)."""
    r = _underlying_requirement(prm, ns, p, pg)
    if lev:
        floor = leverage_floor(ns, p, lev)
        if floor > r:
            return floor
    return r


def _requirement(ex: Exchange, initial: bool, addon_value: int, under: list[_Underlying | None],
                 res: Assessment, detail: bool) -> int:
    """The borrow add-on plus, per underlying, the worst of its requirement as it is, with
    every bid filled, and with every ask filled; each is the scenario requirement, and for
    the initial requirement at least the leverage floor (``leverage_floor``)."""
    risk = ex.genesis.risk
    days = risk.borrow_addon_days_im if initial else risk.borrow_addon_days_mm
    req = -(-addon_value * days // (PPM * DAYS_PER_YEAR)) if addon_value else 0
    params = ex.im_params if initial else ex.mm_params
    for u in range(len(under)):
        g = under[u]
        if g is None:
            continue
        ns, p, pg = g.ns, g.p, g.pg
        prm = params[u]
        lev = g.lev if initial else 0
        worst = _case_requirement(prm, ns, p, pg, lev)
        if g.b_spot or g.b_perp or g.b_eq:
            r = _case_requirement(prm, ns + g.b_spot, p + g.b_perp, pg + g.b_gross, lev) - g.b_eq
            if r > worst:
                worst = r
        if g.a_spot or g.a_perp or g.a_eq:
            r = _case_requirement(prm, ns + g.a_spot, p + g.a_perp, pg + g.a_gross, lev) - g.a_eq
            if r > worst:
                worst = r
        req += worst
        if detail:
            res.underlyings[u] = [ns, p, pg, worst]
    return req


# ---------------------------------------------------------------------------------- pre-trade
def reserved_of(ex: Exchange, acct: Account, asset: int) -> int:
    """What the account's open spot orders would spend of ``asset`` if they all filled (bids:
    quote incl. the largest fee; asks: base). Informational, and for the pool check."""
    held = 0
    markets = ex.markets
    for m, (bl, bn, al, _an) in acct.orders.items():
        spec = markets[m]
        if spec.is_derivative:
            continue
        if bl and spec.quote == asset:
            held += bn + fee(bn, ex.max_fee_ppm)
        if al and spec.base == asset:
            held += al * spec.lot_size
    return held


def reserved(ex: Exchange, acct: Account) -> dict[int, int]:
    """``reserved_of`` for every asset the account's open spot orders could spend."""
    assets = {a for m in acct.orders if not ex.markets[m].is_derivative for a in (ex.markets[m].quote, ex.markets[m].base)}
    out = {a: reserved_of(ex, acct, a) for a in sorted(assets)}
    return {a: v for a, v in out.items() if v}


def _spot_borrow_need(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, size: int, notional: int,
                      replacing: Order | None) -> tuple[int, int]:
    """(asset, amount) a spot order would have to borrow if it and every other open order on
    the same asset filled."""
    asset = market.quote if is_buy else market.base
    spend = notional + fee(notional, ex.max_fee_ppm) if is_buy else size * market.lot_size
    held = reserved_of(ex, acct, asset)
    if replacing is not None and not ex.markets[replacing.market].is_derivative:
        rs = ex.markets[replacing.market]
        if (rs.quote if replacing.is_buy else rs.base) == asset:
            rn = replacing.price * replacing.size * rs.tick_value
            held -= rn + fee(rn, ex.max_fee_ppm) if replacing.is_buy else replacing.size * rs.lot_size
    available = max(acct.balance(asset), 0) - held
    return asset, max(0, spend - max(available, 0))


def must_afford_order(
    ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int, size: int,
    replacing: Order | None = None, *, later: bool = False,
) -> None:
    """Raise INSUFFICIENT_* (or a pool code) unless the account can place this order.
    ``replacing`` is an order of the same account that is cancelled first (a modify).
    ``later``: the order trades only when a trigger fires (state/triggers.py), so the
    risk-reducing exceptions value it at ``price``, its worst, and never at the book it
    would meet now: a stop-loss below the market is not sold at today's bids."""
    notional = price * size * market.tick_value
    leg: OrderLeg = (market.market_id, is_buy, size, notional)
    if market.is_derivative and size + _same_side_open(acct, market.market_id, is_buy, replacing) \
            <= reduce_capacity(acct, market.market_id, is_buy):
        # reduces the position even with every other open order on its side. Allowed below
        # initial margin only if it does not deepen the shortfall and the account stays solvent
        # should it and every other open order fill, the order valued at what it would trade
        # for (``_walk_notional``: a market close with slippage is judged by the book it
        # meets): a close at the band's far edge into a colluding account realizes a loss that
        # can exceed the account's equity, and that deficit would be the fund's and the lenders'
        walked = _valued(ex, acct, market, is_buy, price, size, later)
        now = assess(ex, acct, True, orders=True, drop=replacing)
        with_it = assess(ex, acct, True, orders=True, add=walked, drop=replacing)
        if not later and _other_side_open(ex, acct, market, is_buy):
            # and as filled whole at that value with the other side's orders still open: the
            # sides' cases are alternatives, so the loss of a close far from the mark was
            # charged only where the asks (or bids) fill, not under the other side's orders
            filled = assess(ex, acct, True, orders=True, fill=walked, drop=replacing)
            if filled.shortfall > with_it.shortfall:
                with_it = filled
        if with_it.shortfall <= max(now.shortfall, 0) and _solvent_if_filled(ex, acct, walked, replacing):
            return
    borrow = (0, 0)
    if not market.is_derivative:
        borrow = _spot_borrow_need(ex, acct, market, is_buy, size, notional, replacing)
    after = assess(ex, acct, True, orders=True, add=leg, drop=replacing)
    if after.equity >= after.requirement and not later:
        after = _with_the_part_that_trades_now(ex, acct, market, is_buy, price, size, replacing, after)
    if after.equity >= after.requirement:
        if borrow[1]:
            ex.pools[borrow[0]].must_lend_out(borrow[1], what="borrow")
        return
    if not market.is_derivative and _only_shrinks(ex, acct, market, is_buy, size):
        # judged with the open orders counted, as the derivative exception above is: a spot
        # holding can hedge the account's other orders (asks on a perp of the same
        # underlying), and selling it below initial margin deepened the orders' worst case
        now = assess(ex, acct, True, orders=True, drop=replacing)
        filled = assess(ex, acct, True, orders=True, fill=leg, drop=replacing)
        walked = _valued(ex, acct, market, is_buy, price, size, later)
        if filled.shortfall < now.shortfall and _solvent_if_filled(ex, acct, walked, replacing):
            return
    _must_be_priced(after, f"order on market {market.market_id}")
    short = after.requirement - after.equity
    if not market.is_derivative and borrow[1]:
        raise TxError(Code.INSUFFICIENT_BALANCE,
                      f"order needs {borrow[1]} more of asset {borrow[0]} than the account holds and margin "
                      f"cannot borrow it: initial margin shortfall {short}")
    raise TxError(Code.INSUFFICIENT_MARGIN, f"initial margin shortfall {short}")


def _valued(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int, size: int,
            later: bool) -> OrderLeg:
    """The order as a risk-reducing exception values it: at what it would trade for now
    (``_walk_notional``), or at its limit when it trades only once a trigger fires."""
    notional = price * size * market.tick_value if later else _walk_notional(ex, acct, market, is_buy, price, size)
    return (market.market_id, is_buy, size, notional)


def _same_side_open(acct: Account, market: int, is_buy: bool, replacing: Order | None) -> int:
    """Lots the account's open orders (and margin-counting triggers) on ``market`` already
    have on the ``is_buy`` side, less the order a modify replaces."""
    agg = acct.orders.get(market)
    lots = (agg[0] if is_buy else agg[2]) if agg is not None else 0
    if replacing is not None and replacing.market == market and replacing.is_buy == is_buy:
        lots -= replacing.size
    return max(lots, 0)


#: resting orders a risk-reducing order's valuation, or a crossing order's filled part, walks
#: at most (``_walk``)
WALK_ORDERS: Final = 1000


def _with_the_part_that_trades_now(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int,
                                   size: int, replacing: Order | None, after: Assessment) -> Assessment:
    """``after`` (the account with the order counted as an open order), or, when part of the
    order crosses the book now, the account as if that part had filled at the prices it meets
    and the rest rested, its other open orders counted: whichever is short of initial margin
    first. The open-order view counts each side's orders as an alternative to the other
    side's (every bid filled, or every ask), so the loss a crossing order realizes against
    the mark or index was charged only in the case where its side fills; but that part fills
    for certain, and the account's orders on the other side stay open after it (a spot buy
    over the index under a stack of perp asks would otherwise end below initial margin).
    Only orders of the other side on the same underlying make the two views differ (the
    cases are per underlying), so an account without any skips the walk."""
    if not ex.books[market.market_id].crosses(is_buy, price) or not _other_side_open(ex, acct, market, is_buy):
        return after
    lots, notional = _walk(ex, acct, market, is_buy, price, size, True)
    if not lots:
        return after
    rest = size - lots
    add: OrderLeg | None = (market.market_id, is_buy, rest, price * rest * market.tick_value) if rest else None
    now = assess(ex, acct, True, orders=True, fill=(market.market_id, is_buy, lots, notional), add=add, drop=replacing)
    return now if now.shortfall > after.shortfall else after


def _other_side_open(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool) -> bool:
    """Whether the account has open orders (or margin-counting triggers) of the other side
    on ``market``'s underlying: only they make a fill's view differ from an order's."""
    minfo = ex.minfo
    u = minfo[market.market_id].base
    return any((sums[2] if is_buy else sums[0]) and minfo[m].base == u for m, sums in acct.orders.items())


def _walk(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int, size: int,
          reduce_only_makers: bool = False) -> tuple[int, int]:
    """(lots, notional) of the part of ``size`` lots at limit ``price`` that would trade
    now against the book, at the resting orders' prices (``_walk_notional``'s walk, same
    bound and same orders passed over; ``reduce_only_makers``: those are met too, as when
    the part that fills is what is judged, not only a value to be conservative about)."""
    book = ex.books[market.market_id]
    levels = book.asks if is_buy else book.bids
    left, total, budget = size, 0, WALK_ORDERS
    switches = lapse.switches_due(ex)
    for p in (book.ask_prices if is_buy else reversed(book.bid_prices)):
        if not left or not budget or (p > price if is_buy else p < price):
            break
        for o in levels[p].orders:
            if not o.live:
                continue  # dead entries are not state: a restarted node has none (state/book.py)
            if not left or not budget:
                break
            budget -= 1
            if o.owner == acct.address or (o.reduce_only and not reduce_only_makers) or lapse.lapsed(ex, o, switches):
                continue
            q = min(left, o.size)
            total += p * q
            left -= q
    return size - left, total * market.tick_value


def _walk_notional(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, price: int, size: int) -> int:
    """What ``size`` lots at limit ``price`` would trade for: the part that crosses the book now
    at the resting orders' prices (best first), the rest (which would rest) at the limit. The
    account's own orders (self-trade prevention cancels them) and reduce-only makers (they may
    be clipped or cancelled) are passed over, so the walk never prices a fill the matching
    engine would not make; so are lapsed ones (past their expiry or under a due dead-man
    switch, state/lapse.py: matching removes them). At most ``WALK_ORDERS`` resting orders are
    visited (what is left counts at the limit): passed-over orders are not consumed, so
    without a bound every close could walk the same thousands of them."""
    lots, notional = _walk(ex, acct, market, is_buy, price, size)
    return notional + (size - lots) * price * market.tick_value


def _solvent_if_filled(ex: Exchange, acct: Account, leg: OrderLeg, drop: Order | None) -> bool:
    """Whether the account's equity stays >= 0 if ``leg`` and every other open order (less
    ``drop``) filled at their limits with the largest fee (a fill's loss against the mark or
    index counted, a gain not): the risk-reducing exceptions must not let an account trade
    itself below zero."""
    equity = assess(ex, acct, False).equity
    eff = _LegEffect()
    minfo = ex.minfo
    legs: list[OrderLeg] = [leg]
    for m, sums in sorted(acct.orders.items()):
        bl, bn, al, an = sums if drop is None or drop.market != m else _without(drop, minfo[m].tick_value, *sums)
        if bl:
            legs.append((m, True, bl, bn))
        if al:
            legs.append((m, False, al, an))
    for m, is_buy, lots, notional in legs:
        _leg_effect(ex, m, is_buy, lots, notional, eff)
        equity += eff.equity
    return equity >= 0


def _must_be_priced(after: Assessment, what: str) -> None:
    """STALE_PRICE rather than a margin shortfall when what failed is a liability in an
    asset with no index (``_unpriced_liability``): no deposit would fix it."""
    if after.requirement >= UNPRICED_REQUIREMENT:
        raise TxError(Code.STALE_PRICE, f"{what} would leave a short sale, debt or perp position in an asset "
                                        "with no oracle price")


def _only_shrinks(ex: Exchange, acct: Account, market: MarketSpec, is_buy: bool, size: int) -> bool:
    """A spot order that can only move the base balance toward zero, even if every other
    open order on that market fills too."""
    bal = acct.balance(market.base)
    agg = acct.orders.get(market.market_id, [0, 0, 0, 0])
    if is_buy:
        return bal < 0 and (agg[0] + size) * market.lot_size <= -bal
    return bal > 0 and (agg[2] + size) * market.lot_size <= bal


def must_afford_withdrawal(ex: Exchange, acct: Account, asset: int, amount: int, what: str = "withdraw") -> None:
    """A withdrawal takes idle funds (incl. what a ``borrow`` drew) and then supply, never
    creating a debt; the pool must be liquid for the supplied part, and initial margin must
    hold afterwards. ``what`` names the action in the messages (a transfer's checks are these)."""
    idle = acct.idle.get(asset, 0)
    have = idle + ex.pools.supplied(acct, asset)
    if amount > have:
        raise TxError(Code.INSUFFICIENT_BALANCE, f"{what} {amount}, available {have}")
    pool = ex.pools[asset]
    from_pool = amount - min(idle, amount)
    pool.must_lend_out(ex.pools.supply_drop(acct, asset, from_pool), what="withdrawal" if what == "withdraw" else what)
    if amount > pool.custody:
        raise TxError(Code.POOL_ILLIQUID, f"{what} {amount} exceeds the chain's custody {pool.custody}")
    after = assess(ex, acct, True, orders=True, d_balance=(asset, -amount))
    if after.equity < after.requirement:
        _must_be_priced(after, f"{what} {amount}")
        raise TxError(Code.INSUFFICIENT_MARGIN,
                      f"{what} {amount} leaves initial margin shortfall {after.requirement - after.equity}")


def must_afford_borrow(ex: Exchange, acct: Account, asset: int, amount: int) -> None:
    """A borrow needs a price for the asset, a liquid pool within its utilization cap, and
    initial margin with the larger debt."""
    if asset != ex.collateral_asset and not asset_price(ex, asset):
        raise TxError(Code.STALE_PRICE, f"asset {asset} has no price yet")
    ex.pools[asset].must_lend_out(amount, what="borrow")
    new_debt = amount - min(amount, ex.pools.supplied(acct, asset))
    after = assess(ex, acct, True, orders=True, d_debt=(asset, new_debt))
    if after.equity < after.requirement:
        raise TxError(Code.INSUFFICIENT_MARGIN,
                      f"borrow {amount} leaves initial margin shortfall {after.requirement - after.equity}")
    must_within_borrow_ltv(ex, acct, asset, new_debt, after.equity)


def gross_debt_value(ex: Exchange, acct: Account, extra: tuple[int, int] | None = None) -> int:
    """Every debt of the account at its index price (collateral units, rounded up), plus
    ``extra`` = (asset, amount) of new debt."""
    total = 0
    for a in sorted(acct.scaled):
        debt = ex.pools.debt(acct, a)
        if extra is not None and extra[0] == a:
            debt += extra[1]
        if debt:
            total += debt if a == ex.collateral_asset else -value_of(-debt, asset_price(ex, a), ex.unit[a])
    if extra is not None and extra[0] not in acct.scaled and extra[1]:
        a, debt = extra
        total += debt if a == ex.collateral_asset else -value_of(-debt, asset_price(ex, a), ex.unit[a])
    return total


def must_within_borrow_ltv(ex: Exchange, acct: Account, asset: int, new_debt: int, equity: int) -> None:
    """Gross borrows are capped by the account's assets at ``max_borrow_ltv_ppm``, whatever
    its net delta: a borrow held idle hedges itself in every price scenario, so without this
    cap it would need only the interest add-on, and one account could drain a pool and set
    every borrower's rate (Aave's loan-to-value, applied to equity + debt)."""
    if new_debt <= 0:
        return
    ltv = ex.genesis.risk.max_borrow_ltv_ppm
    debt = gross_debt_value(ex, acct, (asset, new_debt))
    if debt * PPM > ltv * (max(equity, 0) + debt):
        raise TxError(Code.BORROW_LIMIT,
                      f"gross borrows {debt} would exceed {ltv // 10_000}% of the account's assets")


def maintenance(ex: Exchange, acct: Account, detail: bool = False) -> Assessment:
    return assess(ex, acct, False, detail=detail)
