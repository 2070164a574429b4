"""The one registry of error codes.

Why one registry: a rejected transaction must carry the same code in its receipt, in an
RPC error and in the CLI's exit message, and the codes are part of the chain's history
(receipts are hashed into blocks' results), so they never change meaning once assigned.
"""

from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    OK = 0
    # decoding and envelope (1xx)
    MALFORMED = 100
    OVERSIZE = 101
    UNKNOWN_TX_TYPE = 102
    BAD_SIGNATURE = 103
    # 104 is retired: a signature over another chain id fails as BAD_SIGNATURE
    WRONG_CHAIN = 105  # a Hyperliquid user-signed action for another hyperliquidChain (state/hltx.py)
    # replay protection (2xx)
    NONCE_USED = 200
    NONCE_TOO_LOW = 201
    NONCE_OUT_OF_WINDOW = 202
    TX_EXPIRED = 203  # included after the envelope's expires_after: consumes nothing, not even the nonce
    # authorisation (3xx)
    UNAUTHORIZED = 300
    # reference errors (4xx)
    UNKNOWN_MARKET = 400
    UNKNOWN_ASSET = 401
    UNKNOWN_ORDER = 402
    UNKNOWN_ACCOUNT = 403  # admission: a signer with no account sends anything but a deposit or prices
    DUPLICATE_CLOID = 404
    # order validity (5xx)
    # 500 and 501 are retired: prices are ticks and sizes lots by construction
    BELOW_MIN_NOTIONAL = 502
    ZERO_SIZE = 503
    PRICE_OUT_OF_RANGE = 504
    ALO_WOULD_CROSS = 505
    REDUCE_ONLY_WOULD_INCREASE = 506
    REDUCE_ONLY_NOT_PERP = 507
    IOC_NO_FILL = 508
    TOO_MANY_OPEN_ORDERS = 509
    BATCH_TOO_LARGE = 510
    NESTED_BATCH = 511
    PRICE_OUT_OF_BAND = 512  # a limit or trigger price too far from the oracle (the market's band)
    MARKET_CLOSED = 513  # a dated future at or past its expiry (state/futures.py)
    SCHEDULE_CANCEL_LIMIT = 514  # too many dead-man switch sets/clears this UTC day
    SCHEDULE_CANCEL_TOO_SOON = 515  # a dead-man deadline closer than orders.schedule_cancel_min_ms
    BAD_TRIGGER = 516  # an invalid trigger order spec (state/triggers.py)
    ORDER_EXPIRED = 517  # a good-til-time order whose expiry is not after the block time
    BAD_DECIMAL = 518  # a Hyperliquid price or size off its rules or off the market's tick or lot (state/hlexec.py)
    DEAD_MAN_PENDING = 519  # the account's due dead-man switch cannot run in this block yet (state/lifetimes.py)
    EXPIRY_PENDING = 520  # the account's expired orders cannot all be removed in this block yet (state/lifetimes.py)
    # funds and risk (6xx)
    INSUFFICIENT_BALANCE = 600
    INSUFFICIENT_MARGIN = 601
    AMOUNT_OUT_OF_RANGE = 602
    UTILIZATION_CAP = 603
    POOL_ILLIQUID = 604
    BORROW_LIMIT = 605  # gross borrows above the loan-to-value cap
    LEVERAGE_OUT_OF_RANGE = 620  # update_leverage: 1..the market's max_leverage, derivatives only
    TOO_MANY_AGENTS = 621  # limits.max_agents_per_account
    TOO_MANY_SUB_ACCOUNTS = 622  # limits.max_sub_accounts
    SUB_ACCOUNT_EXISTS = 623
    # oracle (7xx)
    NOT_A_VALIDATOR = 700
    STALE_PRICE = 701
    # equivocation evidence (71x, consensus/evidence.py): why a block's evidence is invalid
    EVIDENCE_MISMATCH = 710  # the two votes are not by one validator for one (height, round, type)
    EVIDENCE_NOT_CONFLICTING = 711  # the two votes are for the same block id
    EVIDENCE_UNKNOWN_VALIDATOR = 712  # the signer is not in the validator set
    EVIDENCE_TOO_NEW = 713  # evidence for this block's height or later
    EVIDENCE_DUPLICATE = 714  # the same equivocation twice in a block, or already committed
    EVIDENCE_EXPIRED = 715  # the offence is older than the genesis evidence.max_age_blocks
    # node-level admission (9xx): never appear in receipts, only in RPC/mempool answers
    MEMPOOL_FULL = 900
    DUPLICATE_TX = 901
    TX_TOO_LARGE = 902
    NOT_READY = 903
    NOT_FOUND = 904  # RPC: no such block, transaction, route or result
    INTERNAL_ERROR = 905  # RPC: the node failed to answer (a bug; logged)
    METHOD_NOT_ALLOWED = 906  # RPC: the route exists, not with this HTTP method
    MEMPOOL_BUSY = 907  # retryable: the pending set holds the admission window (or the signer its share)
    RATE_LIMITED = 908  # RPC 429, retryable: this client is over its own share of the node's reads or submissions
    # state sync (91x, node/snapshots.py, node/syncverify.py): why a snapshot is refused
    SNAPSHOT_MALFORMED = 910  # not a snapshot, truncated, undecodable, another chain's, or records that do not load
    SNAPSHOT_ROOT_MISMATCH = 911  # its records do not give the app hash (or hold the block time) it states
    SNAPSHOT_NOT_CERTIFIED = 912  # the chain's certified block h+1 does not carry its app hash (or block hash)
    SNAPSHOT_UNVERIFIED = 913  # RPC, retryable: state synced from a snapshot not yet checked against block h+1
    NEXT_BLOCK_UNPROVEN = 914  # block h+1 as fetched does not prove itself (certificate, height, chain): its sender's fault
    SNAPSHOT_UNAVAILABLE = 915  # the source cannot be read or offers none, or this home cannot take one (not fresh)


class TxError(Exception):
    """A rejection with a stable code; raised inside checks, turned into a receipt."""

    __slots__ = ("code", "message")

    def __init__(self, code: Code, message: str = "") -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message or code.name.lower().replace("_", " ")


class StateIntegrityError(RuntimeError):
    """State records (a store being opened, a snapshot being loaded) that do not give the app
    hash recorded with them: damaged or altered."""
