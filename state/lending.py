"""Lending pools: one per asset, balances scaled by cumulative indices, a kinked rate model.

Balances. An account's holding of an asset has two parts:

- ``scaled`` (signed): its position in the asset's pool. Positive = supplied, stored as
  supply shares (amount * 1e18 / supply_index); negative = borrowed, stored as debt shares
  (amount * 1e18 / borrow_index). Interest therefore costs O(1) per block: advancing the
  two indices changes every supplier's and borrower's balance at once.
- ``idle`` (>= 0, raw units): what the account holds outside the pool. That is its balance
  when it turned auto-lending off (``lend`` tx), what it drew with ``borrow`` and has not
  spent yet, and the credits it received with auto-lending off as far as the pool could pay
  them (see Liquidity).

The account's balance is ``idle + value(scaled)``; there is no separate spot, futures or
lending wallet, and margin sees only that sum. Credits repay debt first, then go to the pool
(auto-lend on, the default) or to ``idle`` (auto-lend off; an account with auto-lend off may
still hold supply, see Liquidity). Debits take ``idle`` first, then supply, then borrow: a
trade or a perp loss beyond what the account holds is a borrow, and it pays interest from
that block on.

Rounding (always for the protocol): a supplier's value rounds down, a borrower's debt up; a
credit's shares round down, a debit's up. Every conversion therefore leaves
``custody - (value(S) - value(D) + idle_total)`` >= 0 for each pool, where ``custody`` is
deposits minus withdrawals, ``S``/``D`` the total supply/debt shares. That surplus is the
rounding dust; the per-block step sweeps it to the insurance fund (``Exchange.sweep_dust``).

Interest. At the start of each block the borrow index grows by
``rate * dt / year`` (rate fixed at the end of the previous block from utilization, debt
rounded up); the interest actually owed, ``ceil(D * Ib1) - ceil(D * Ib0)``, is split: the
reserve factor's part goes to the insurance fund, the rest raises the supply index by at
most what suppliers can be paid (``floor(share * 1e18 / S)``). Suppliers therefore never
receive more than borrowers owe, and the supply rate is, in aggregate, exactly
``borrow rate * utilization * (1 - reserve factor)``.

Rate model (Aave v3's shape), utilization U = value(D) / value(S), capped at 100% for the
rate: ``base + slope1 * U / U_opt`` up to the kink, then ``+ slope2 * (U - U_opt) / (1 - U_opt)``.

Liquidity. A ``borrow``, a supplier's withdrawal (or auto-lend off, or a transfer out of
supply) and a spot order that would borrow are checked against the pool when they happen:
the pool must hold the amount and utilization must stay within the cap (UTILIZATION_CAP /
POOL_ILLIQUID), in transaction order, so a borrow never takes what a supplier withdrew
earlier in the block. ``Pool.headroom`` is exactly the most that check lets a supplier
withdraw. Idle funds withdraw without that check (they are outside the pool), so idle must
never be the way out of the pool past its cap. A fill, a perp's PnL, funding, a dated
future's settlement, a liquidation's transfer or an isolated account's sweep back to cross
is never refused, and can move an account's supply to an account with auto-lend off: at
the end of each step (each action of a transaction, ``begin_block``, ``end_block``),
``Pools.settle_idle`` keeps the step's idle credits idle only as far as the pool could have
paid a withdrawing supplier, i.e. until the step would leave the headroom below
``min(headroom before the step, 0)``, and lends the rest (supply shares of the receiving
account, earning interest; a later withdrawal of them is a supplier's, checked). A step
that takes nothing from the pool beyond that (a trade paid from idle, a deposit, a checked
transfer) keeps every idle credit idle. A fill between pool members, or a short sale's
borrow, can take utilization above the cap (then borrows and supply withdrawals stop, and
the rate is at its maximum, until debts are repaid), but nobody holds the difference
idle. Every withdrawal is also bounded by ``custody``, so the
bridge never pays out more than it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from state.errors import Code, TxError
from state.muldiv import ONE, div_one, mul_one, mul_one_ceil
from state.units import PPM, YEAR_MS

if TYPE_CHECKING:
    from state.account import Account
    from state.genesis import AssetRisk
    from state.tracker import WriteTracker



def big(n: int) -> bytes:
    """Signed 16-byte encoding for pool totals and indices (they may outgrow 64 bits)."""
    return n.to_bytes(16, "big", signed=True)


def unbig(b: bytes) -> int:
    return int.from_bytes(b, "big", signed=True)


class Pool:
    """One asset's pool; also holds the asset's custody and oracle price (one record)."""

    __slots__ = (
        "asset", "borrow_index", "custody", "debt_shares", "idle_total", "oracle_ms", "oracle_px",
        "params", "rate_ppm", "supply_index", "supply_shares",
    )

    def __init__(self, asset: int, params: AssetRisk) -> None:
        self.asset = asset
        self.params = params
        self.supply_index = ONE
        self.borrow_index = ONE
        self.supply_shares = 0
        self.debt_shares = 0
        self.idle_total = 0
        self.custody = 0  # deposits - withdrawals: what the bridge holds for this chain
        self.rate_ppm = params.base_rate_ppm  # borrow APR for the next accrual
        self.oracle_px = 0  # 0 = no oracle price yet
        self.oracle_ms = 0

    # ------------------------------------------------------------------ values
    def supply_value(self) -> int:
        return mul_one(self.supply_shares, self.supply_index)

    def debt_value(self) -> int:
        return mul_one_ceil(self.debt_shares, self.borrow_index)

    def cash(self) -> int:
        """What the pool can lend out now: supplied minus borrowed."""
        return self.supply_value() - self.debt_value()

    def utilization_ppm(self, extra_debt: int = 0, less_supply: int = 0) -> int:
        supply = self.supply_value() - less_supply
        debt = self.debt_value() + extra_debt
        if debt <= 0:
            return 0
        if supply <= 0:
            return PPM * 10  # over-borrowed: above any cap
        return -(-debt * PPM // supply)

    def borrow_rate_ppm(self, util_ppm: int) -> int:
        p = self.params
        u = min(util_ppm, PPM)
        if u <= p.optimal_util_ppm:
            return p.base_rate_ppm + p.slope1_ppm * u // p.optimal_util_ppm
        return p.base_rate_ppm + p.slope1_ppm + p.slope2_ppm * (u - p.optimal_util_ppm) // (PPM - p.optimal_util_ppm)

    def supply_rate_ppm(self) -> int:
        """Informational: borrow rate x utilization x (1 - reserve factor)."""
        u = min(self.utilization_ppm(), PPM)
        return self.rate_ppm * u // PPM * (PPM - self.params.reserve_factor_ppm) // PPM

    def surplus(self) -> int:
        """Custody not owed to anyone: rounding dust (>= 0 by construction)."""
        return self.custody - (self.supply_value() - self.debt_value() + self.idle_total)

    def headroom(self) -> int:
        """The most a supplier could withdraw now: ``must_lend_out`` lets any amount up to
        it leave and refuses any above (negative when the pool is past its cap). With the
        cap at most 100%, ``ceil(debt / cap)`` of supply must stay, which also keeps the
        withdrawal within the pool's cash."""
        debt = self.debt_value()
        return self.supply_value() - (-(-debt * PPM // self.params.util_cap_ppm))

    # ------------------------------------------------------------------ checks
    def must_lend_out(self, amount: int, *, what: str) -> None:
        """Raise unless ``amount`` can leave the pool (a borrow or a supplier's withdrawal):
        the pool must hold it, and utilization must stay within the cap afterwards."""
        if amount <= 0:
            return
        if amount > self.cash():
            raise TxError(Code.POOL_ILLIQUID, f"{what} {amount} exceeds the pool's available {max(self.cash(), 0)}")
        is_borrow = what == "borrow"
        util = self.utilization_ppm(extra_debt=amount if is_borrow else 0, less_supply=0 if is_borrow else amount)
        if util > self.params.util_cap_ppm:
            raise TxError(Code.UTILIZATION_CAP,
                          f"{what} {amount} would take utilization to {util} ppm, cap {self.params.util_cap_ppm}")

    # ------------------------------------------------------------------ accrual
    def accrue(self, dt_ms: int) -> tuple[bool, int]:
        """Advance the indices over ``dt_ms``; returns (whether they moved, reserve part).
        The caller credits the reserve to the insurance fund."""
        if dt_ms <= 0 or self.debt_shares <= 0 or self.rate_ppm <= 0:
            return False, 0
        before = self.debt_value()
        growth = -(-self.borrow_index * self.rate_ppm * dt_ms // (PPM * YEAR_MS))
        self.borrow_index += growth
        interest = self.debt_value() - before
        reserve = interest * self.params.reserve_factor_ppm // PPM
        to_suppliers = interest - reserve
        if self.supply_shares > 0 and to_suppliers > 0:
            self.supply_index += to_suppliers * ONE // self.supply_shares
        return growth > 0, reserve

    def update_rate(self) -> None:
        self.rate_ppm = self.borrow_rate_ppm(self.utilization_ppm())

    # ------------------------------------------------------------------ record
    def is_default(self) -> bool:
        return (self.supply_index == ONE and self.borrow_index == ONE and not self.supply_shares
                and not self.debt_shares and not self.idle_total and not self.custody
                and self.rate_ppm == self.params.base_rate_ppm and not self.oracle_px and not self.oracle_ms)

    def record(self) -> list[object]:
        return [big(self.supply_index), big(self.borrow_index), big(self.supply_shares), big(self.debt_shares),
                big(self.idle_total), big(self.custody), self.rate_ppm, self.oracle_px, self.oracle_ms]

    def load(self, r: list[object]) -> None:
        si, bi, ss, ds, it, cu = (unbig(x) for x in r[:6])  # type: ignore[arg-type]
        self.supply_index, self.borrow_index, self.supply_shares, self.debt_shares = si, bi, ss, ds
        self.idle_total, self.custody = it, cu
        self.rate_ppm, self.oracle_px, self.oracle_ms = r[6], r[7], r[8]  # type: ignore[assignment]


class Pools:
    """All pools, and the write tracking of everything that holds a balance.

    Every change of an account's balances goes through a method of this class, and each of
    them marks the account in the exchange's ``WriteTracker`` (state/tracker.py), which
    ``Exchange.collect_writes`` turns into the block's account records: an account record
    cannot change without reaching the write set, whichever caller moved the money (a
    trade, a liquidation's unwind, a backstop, a write-off). ``tests/state/test_write_tracking.py`` checks that
    no other module assigns an account's balances, settings or positions directly."""

    __slots__ = ("by_asset", "fresh", "opened", "tracker")

    def __init__(self, params: tuple[AssetRisk, ...], tracker: WriteTracker) -> None:
        self.by_asset = [Pool(a, p) for a, p in enumerate(params)]
        self.tracker = tracker  # the exchange's (state/tracker.py)
        # the current step's (``settle_idle``): each pool's headroom before the step first
        # changed it, and the idle credits (auto-lend off) the step made, by (asset, account)
        self.opened: dict[int, int] = {}
        self.fresh: dict[tuple[int, bytes], tuple[Account, int]] = {}

    def __getitem__(self, asset: int) -> Pool:
        return self.by_asset[asset]

    def _open(self, asset: int) -> Pool:
        """The pool, its headroom noted if this is the step's first change of it."""
        pool = self.by_asset[asset]
        if asset not in self.opened:
            self.opened[asset] = pool.headroom()
        return pool

    # ------------------------------------------------------------------ balances
    def real(self, acct: Account, asset: int) -> int:
        """The account's signed balance of ``asset`` (idle plus pool position)."""
        s = acct.scaled.get(asset, 0)
        idle = acct.idle.get(asset, 0)
        if s > 0:
            return idle + mul_one(s, self.by_asset[asset].supply_index)
        if s < 0:
            return idle - mul_one_ceil(-s, self.by_asset[asset].borrow_index)
        return idle

    def debt(self, acct: Account, asset: int) -> int:
        s = acct.scaled.get(asset, 0)
        return mul_one_ceil(-s, self.by_asset[asset].borrow_index) if s < 0 else 0

    def supplied(self, acct: Account, asset: int) -> int:
        s = acct.scaled.get(asset, 0)
        return mul_one(s, self.by_asset[asset].supply_index) if s > 0 else 0

    def credit(self, acct: Account, asset: int, amount: int) -> None:
        """Add ``amount`` (may be negative: a debit) to the account's balance of ``asset``.
        A credit kept idle (auto-lend off) is noted for ``settle_idle``."""
        if amount > 0:
            self._add(acct, asset, amount, asset in acct.lend_off, True)
        elif amount < 0:
            self._take(acct, asset, -amount)

    def _add(self, acct: Account, asset: int, amount: int, keep_idle: bool, fresh: bool) -> None:
        """A credit: repays debt first, then goes to ``idle`` (``keep_idle``) or the pool."""
        pool = self._open(asset)
        self.tracker.pools.add(asset)
        self.tracker.balance_changed(acct.address)
        scaled = acct.scaled
        s = scaled.get(asset, 0)
        if s < 0:  # repay debt first
            debt = mul_one_ceil(-s, pool.borrow_index)
            if amount >= debt:
                pool.debt_shares += s
                s = 0
                amount -= debt
            else:
                shares = div_one(amount, pool.borrow_index)
                pool.debt_shares -= shares
                s += shares
                amount = 0
        if amount:
            if keep_idle:
                acct.idle[asset] = acct.idle.get(asset, 0) + amount
                pool.idle_total += amount
                if fresh:
                    key = (asset, acct.address)
                    noted = self.fresh.get(key)
                    self.fresh[key] = (acct, amount + (noted[1] if noted is not None else 0))
            else:
                shares = div_one(amount, pool.supply_index)
                pool.supply_shares += shares
                s += shares
        if s:
            scaled[asset] = s
        else:
            scaled.pop(asset, None)

    def _take(self, acct: Account, asset: int, need: int) -> None:
        """A debit of ``need`` > 0: idle first, then supply, then a borrow."""
        pool = self._open(asset)
        self.tracker.pools.add(asset)
        self.tracker.balance_changed(acct.address)
        scaled = acct.scaled
        idle = acct.idle.get(asset, 0)
        if idle:
            take = idle if idle <= need else need
            if idle == take:
                del acct.idle[asset]
            else:
                acct.idle[asset] = idle - take
            pool.idle_total -= take
            need -= take
            if not need:
                return
        s = scaled.get(asset, 0)
        if s > 0:
            supplied = mul_one(s, pool.supply_index)
            if need >= supplied:
                pool.supply_shares -= s
                s = 0
                need -= supplied
            else:
                shares = -div_one(-need, pool.supply_index)
                pool.supply_shares -= shares
                s -= shares
                need = 0
        if need:  # borrow the rest
            shares = -div_one(-need, pool.borrow_index)
            pool.debt_shares += shares
            s -= shares
        if s:
            scaled[asset] = s
        else:
            scaled.pop(asset, None)

    def settle_idle(self) -> None:
        """End of a step (an action of a transaction, ``begin_block``, ``end_block``): an
        idle credit stays idle only as far as the pool could have paid it to a withdrawing
        supplier; the rest is lent (the receiving account's supply, repaying its debt first).

        A fill, a perp's PnL, funding, an expiry's settlement, a liquidation's transfer or
        an isolated account's sweep moves money between accounts unchecked: taken from one
        account's supply and credited to an account with auto-lend off, it would leave the
        pool as ``idle``, which withdraws without a check, so the pool's cash could leave
        past its utilization cap. Here, for each pool the step changed, if its headroom
        (``Pool.headroom``) is now below ``min(headroom before the step, 0)``, the step's
        idle credits are lent until it is not (or none is left), pro rata to what each
        account received (``_lend_fresh``). A step that leaves the headroom at or above
        that (every step that took nothing from the pool beyond what a supplier could
        withdraw) changes nothing. Decided at the end of the step, not per credit: a fill
        credits one side before it debits the other, so the pool is only known once both
        sides settled."""
        if self.fresh:
            by_asset: dict[int, list[tuple[Account, int]]] = {}
            for (asset, _address), credit in sorted(self.fresh.items()):
                by_asset.setdefault(asset, []).append(credit)
            for asset in sorted(by_asset):
                self._lend_fresh(asset, by_asset[asset], min(self.opened[asset], 0))
            self.fresh.clear()
        self.opened.clear()

    def _lend_fresh(self, asset: int, credits: list[tuple[Account, int]], floor: int) -> None:
        """Lend the step's idle credits of ``asset`` (accounts in address order) until the
        pool's headroom is back at ``floor``. Pro rata: each account lends its share of the
        shortfall, ``ceil(short * its credit / all credits)``, so no account keeps idle
        what another in the same step had to lend (in address order alone, a maker with a
        high address beside a victim in one fill kept its whole credit idle while the
        victim's was lent). A unit lent lifts the headroom by about a unit (a supply
        share rounds down; a repaid debt lifts it by more), so what rounding leaves short
        is closed by ``_lend_excess``, in address order, from what each has left."""
        pool = self.by_asset[asset]
        short = floor - pool.headroom()
        if short <= 0:
            return
        avail = [min(amount, acct.idle.get(asset, 0)) for acct, amount in credits]
        total = sum(avail)
        if total <= 0:
            return
        left = avail
        if short < total:
            left = []
            for (acct, _credit), own in zip(credits, avail, strict=True):
                share = min(own, -(-short * own // total))
                if share > 0:
                    self._lend_idle(acct, asset, share)
                left.append(own - share)
        for (acct, _credit), own in zip(credits, left, strict=True):
            self._lend_excess(acct, asset, own, floor)

    def _lend_idle(self, acct: Account, asset: int, amount: int) -> None:
        """Move ``amount`` (0 < amount <= idle) of the account's idle ``asset`` into the
        pool: its debt first, then supply."""
        idle = acct.idle[asset]
        if amount == idle:
            del acct.idle[asset]
        else:
            acct.idle[asset] = idle - amount
        self.by_asset[asset].idle_total -= amount
        self._add(acct, asset, amount, False, False)

    def _lend_excess(self, acct: Account, asset: int, fresh: int, floor: int) -> None:
        """Lend at most ``fresh`` of the account's idle ``asset`` until the pool's headroom
        is back at ``floor``: a debt is repaid first (lowering what must stay supplied),
        then the supply shares that lift the supply value by the shortfall, rounded up (a
        share rounds down when credited). At most three rounds: repay, supply, done."""
        pool = self.by_asset[asset]
        while True:
            short = floor - pool.headroom()
            avail = min(fresh, acct.idle.get(asset, 0))
            if short <= 0 or avail <= 0:
                return
            s = acct.scaled.get(asset, 0)
            if s < 0:
                lend = min(avail, self.debt(acct, asset))
            else:
                target = pool.supply_value() + short
                shares = -(-target * ONE // pool.supply_index) - pool.supply_shares
                lend = min(avail, mul_one_ceil(shares, pool.supply_index))
            self._lend_idle(acct, asset, lend)
            fresh -= lend

    def supply_drop(self, acct: Account, asset: int, need: int) -> int:
        """What the pool's supply value loses when ``need`` of the account's supply leaves it
        (``_take``'s share burn, or all of it for ``move_supply_to_idle`` when ``need`` is at
        least the supply). The shares burnt are rounded up and each value is rounded down, so
        the pool can lose one unit more than the account receives: the utilization cap is
        checked on this, not on ``need``, or a withdrawal at the cap leaves the pool one unit
        past it with that unit in the account's idle funds."""
        s = acct.scaled.get(asset, 0)
        if s <= 0 or need <= 0:
            return 0
        pool = self.by_asset[asset]
        burnt = s if need >= mul_one(s, pool.supply_index) else min(s, -div_one(-need, pool.supply_index))
        return pool.supply_value() - mul_one(pool.supply_shares - burnt, pool.supply_index)

    def move_supply_to_idle(self, acct: Account, asset: int) -> int:
        """Auto-lend off: the supplied part leaves the pool into ``idle``; returns the amount."""
        s = acct.scaled.get(asset, 0)
        if s <= 0:
            return 0
        pool = self._open(asset)
        self.tracker.accounts.add(acct.address)
        amount = mul_one(s, pool.supply_index)
        pool.supply_shares -= s
        del acct.scaled[asset]
        if amount:
            acct.idle[asset] = acct.idle.get(asset, 0) + amount
            pool.idle_total += amount
        self.tracker.pools.add(asset)
        return amount

    def move_idle_to_pool(self, acct: Account, asset: int, amount: int | None = None) -> int:
        """Idle funds go into the pool: they repay debt first, then become supply (with
        auto-lend off they come back to ``idle``). ``amount`` None moves all of it."""
        idle = acct.idle.get(asset, 0)
        take = idle if amount is None else min(amount, idle)
        if take <= 0:
            return 0
        self.tracker.accounts.add(acct.address)
        if take == idle:
            del acct.idle[asset]
        else:
            acct.idle[asset] = idle - take
        self._open(asset).idle_total -= take
        # with auto-lend off, what is left after the debt stays idle: not a new idle credit
        self._add(acct, asset, take, asset in acct.lend_off, False)
        return take

    def draw_to_idle(self, acct: Account, asset: int, amount: int) -> None:
        """``borrow``: take ``amount`` out of the pool position (supply first, then debt)
        into ``idle``. The account's balance is unchanged; its debt grows."""
        self.tracker.accounts.add(acct.address)
        idle_before = acct.idle.pop(asset, 0)
        pool = self._open(asset)
        pool.idle_total -= idle_before
        self._take(acct, asset, amount)  # no idle left, so this comes out of the pool
        acct.idle[asset] = idle_before + amount
        pool.idle_total += idle_before + amount

    def write_off_debt(self, acct: Account, asset: int, shares: int) -> int:
        """The last-resort write-off (state/liquidation.py ``socialize``): cancel ``shares``
        (at most the account's) of the account's debt shares and take the loss from the
        pool's suppliers, pro rata, by lowering the supply index by what the pool's debt fell
        (or the account's, if more), rounded up, so the pool's surplus cannot go negative.
        Returns that amount."""
        pool = self._open(asset)
        s = acct.scaled.get(asset, 0)
        shares = min(shares, -s) if s < 0 else 0
        self.tracker.pools.add(asset)
        debt_before, pool_debt_before = self.debt(acct, asset), pool.debt_value()
        if shares > 0:
            self.tracker.accounts.add(acct.address)
            pool.debt_shares -= shares
            if s + shares:
                acct.scaled[asset] = s + shares
            else:
                del acct.scaled[asset]
        amount = max(pool_debt_before - pool.debt_value(), debt_before - self.debt(acct, asset))
        if pool.supply_shares:
            pool.supply_index = max(1, pool.supply_index - (-(-amount * ONE // pool.supply_shares)))
        return amount
