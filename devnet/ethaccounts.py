"""The devnet's Ethereum test accounts: deterministic secp256k1 keys funded at genesis.

Why deterministic, as Anvil's and Hardhat's are: docs, tests and scripts can name the same
key on every devnet (``eth0`` is always the same address), and a Hyperliquid client (its
SDK, ccxt) needs nothing from the devnet but its URL and one of these keys. Key ``i`` is
keccak("bookchain devnet test account" || i as 4 big-endian bytes) reduced into 1..n-1.

These keys are public: anyone who reads this file has them. They exist for a local devnet
and must never hold anything anywhere else; ``devnet up`` says so where it prints them.
"""

from __future__ import annotations

from typing import Final

from state.eip712 import SECP256K1_N, EthKey, keccak

PHRASE: Final = b"bookchain devnet test account"
DEFAULT_ETH_ACCOUNTS: Final = 5
MAX_ETH_ACCOUNTS: Final = 1_000
NAME_PREFIX: Final = "eth"
WARNING: Final = "TEST KEYS ONLY: these private keys are public; never use them outside this devnet."


def account_key(index: int) -> EthKey:
    """The ``index``-th devnet test key (the same on every devnet)."""
    if not 0 <= index < 1 << 32:
        raise ValueError("a test account index is 0..2^32-1")
    digest = keccak(PHRASE + index.to_bytes(4, "big"))
    secret = int.from_bytes(digest, "big") % (SECP256K1_N - 1) + 1
    return EthKey(secret.to_bytes(32, "big"))


def account_name(index: int) -> str:
    """The CLI key name of test account ``index``: ``eth0``, ``eth1``, ..."""
    return f"{NAME_PREFIX}{index}"


def sdk_line(private_key_hex: str, rpc_url: str) -> str:
    """How to point the Hyperliquid SDK at the devnet with a key (``0x`` + 64 hex digits)."""
    return f'Exchange(eth_account.Account.from_key("{private_key_hex}"), "{rpc_url}")'
