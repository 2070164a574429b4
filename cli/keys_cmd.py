"""``bookchain keys``: create, list, show, import and export named signing keys.

A key is ed25519 (native transactions) or, with ``--eth``, secp256k1: an Ethereum key whose
transactions the CLI signs as Hyperliquid actions (node/wallet/hlbuild.py), the same key
the Hyperliquid SDK and ccxt can use against the node's ``/exchange``."""

from __future__ import annotations

import time
from typing import Any

import click
from rich.table import Table

from cli.context import (
    get_ctx,
    home_option,
    json_option,
    json_option_saying,
    node_option,
    print_json,
    translate_errors,
)
from cli.render import console
from cli.tx_cmd import common_options, submit
from node.wallet.keystore import (
    AnyKeyRecord,
    EthKeyRecord,
    KeyStoreError,
    parse_eth_key,
    parse_seed,
)
from state.keys import address_from_text
from state.tx import ApproveAgent, RevokeAgent


def _fail(err: KeyStoreError) -> click.UsageError:
    return click.UsageError(str(err))


eth_option = click.option("--eth", is_flag=True,
                          help="A secp256k1 (Ethereum) key: signs Hyperliquid-style actions; its address is "
                               "the Ethereum address of the key.")


def _secret_field(rec: AnyKeyRecord) -> str:
    """What the secret is called: an ed25519 seed, an Ethereum private key."""
    return "private_key" if isinstance(rec, EthKeyRecord) else "seed"


@click.group("keys")
def keys() -> None:
    """Manage signing keys stored as HOME/keys/NAME.json (mode 0600)."""


@keys.command("new")
@click.argument("name")
@eth_option
@home_option
@json_option_saying("Print the new key's name, scheme, pubkey and address as JSON (never the seed).")
def keys_new(name: str, eth: bool, as_json: bool) -> None:
    """Generate a new ed25519 key (secp256k1 with --eth) called NAME and print its address
    (not its secret). `keys add` is the same command.

    \b
    Examples:
      bookchain keys new carol
      bookchain keys add dave --eth
    """
    ks = get_ctx().keystore
    try:
        rec: AnyKeyRecord = ks.create_eth(name) if eth else ks.create(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    if as_json:
        print_json(rec.public_json())
    else:
        click.echo(f"created {rec.scheme} key {rec.name}\naddress {rec.address_text}\npubkey  {rec.pubkey_hex}")


keys.add_command(keys_new, "add")


@keys.command("list")
@home_option
@json_option_saying("Print the keys (name, scheme, pubkey, address) as a JSON list.")
def keys_list(as_json: bool) -> None:
    """List every key in the CLI home with its address. A key file that cannot be read or
    is malformed is reported on a line of its own (on stderr) and the others are listed.

    Example: bookchain keys list --json
    """
    ks = get_ctx().keystore
    records, bad = ks.scan()
    if as_json:
        print_json([r.public_json() for r in records])
    else:
        t = Table(title=f"keys in {ks.dir}", title_justify="left")
        for col in ("name", "scheme", "address", "pubkey"):
            t.add_column(col)
        for r in records:
            t.add_row(r.name, r.scheme, r.address_text, r.pubkey_hex)
        console().print(t)
    for err in bad:
        click.echo(f"skipped: {err}", err=True)


@keys.command("show")
@click.argument("name")
@click.option("--private", is_flag=True, help="Also print the secret seed (anyone with it can sign as you).")
@home_option
@json_option_saying("Print the key as JSON.")
def keys_show(name: str, private: bool, as_json: bool) -> None:
    """Show the scheme, address and public key of NAME.

    Example: bookchain keys show carol
    """
    try:
        rec = get_ctx().keystore.load_any(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    doc = rec.public_json()
    if private:
        doc[_secret_field(rec)] = rec.secret_hex
    if as_json:
        print_json(doc)
    else:
        for k, v in doc.items():
            click.echo(f"{k:11} {v}")


@keys.command("import")
@click.argument("name")
@click.argument("seed_hex", metavar="HEX")
@click.option("--force", is_flag=True, help="Replace an existing key of the same name.")
@eth_option
@home_option
@json_option_saying("Print the imported key's name, scheme, pubkey and address as JSON.")
def keys_import(name: str, seed_hex: str, force: bool, eth: bool, as_json: bool) -> None:
    """Store the 32-byte seed HEX (64 hex digits) under NAME; with --eth, HEX is a
    secp256k1 private key (0x optional, as wallets export it).

    \b
    Examples:
      bookchain keys import carol "$(bookchain keys export carol --home old-home)"
      bookchain keys import dave --eth 0x4c0883a69102937d6231471b5dbb6204fe512961708279f8c5d8a8e6f1c1e3b1
    """
    ks = get_ctx().keystore
    try:
        rec: AnyKeyRecord = (ks.add_eth(name, parse_eth_key(seed_hex), overwrite=force) if eth
                             else ks.add(name, parse_seed(seed_hex), overwrite=force))
    except KeyStoreError as err:
        raise _fail(err) from None
    if as_json:
        print_json(rec.public_json())
    else:
        click.echo(f"imported {rec.scheme} key {rec.name}\naddress {rec.address_text}")


@keys.command("export")
@click.argument("name")
@home_option
def keys_export(name: str) -> None:
    """Print the secret seed of NAME as hex (for `keys import` elsewhere); a secp256k1 key's
    private key is printed 0x-prefixed, as `eth_account.Account.from_key` takes it.

    Example: bookchain keys export carol
    """
    try:
        rec = get_ctx().keystore.load_any(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    click.echo(rec.secret_hex)


@keys.group("agent")
def agent() -> None:
    """Agent (API) keys: a key that trades for an account but can never move its funds."""


@agent.command("approve")
@click.argument("name")
@click.option("--key", "key_name", required=True, metavar="NAME", help="The account's own key (it signs the approval).")
@click.option("--valid-for", type=click.IntRange(1, 10 * 365 * 86_400), default=None, metavar="SECONDS",
              help="The approval ends this many seconds from now (default: until revoked).")
@click.option("--eth", is_flag=True, help="Create NAME (if it does not exist) as a secp256k1 (Ethereum) key.")
@common_options
def agent_approve(name: str, key_name: str, valid_for: int | None, eth: bool, **opts: Any) -> None:
    """Approve the key NAME (created in the CLI home if it does not exist) as an agent of --key.

    The agent may place, cancel and modify orders and set the dead-man switch, for the
    account and its sub-accounts; never withdraw, transfer, borrow, change leverage or
    approve agents. Sign with it as with any key: `--key NAME`. Either key may be
    secp256k1 (a secp256k1 --key signs Hyperliquid's approveAgent).

    \b
    Example:
      bookchain keys agent approve alice-bot --key alice --valid-for 86400
      bookchain tx order BTC-PERP buy --size 0.01 --price 60000 --key alice-bot
    """
    ks = get_ctx().keystore
    try:
        rec: AnyKeyRecord = ks.load_any(name) if ks.exists(name) else (ks.create_eth(name) if eth else ks.create(name))
    except KeyStoreError as err:
        raise _fail(err) from None
    until = int(time.time() * 1000) + valid_for * 1000 if valid_for else 0
    submit(ApproveAgent(rec.address, name[:32], until), key_name, **opts)


@agent.command("revoke")
@click.argument("agent_ref", metavar="NAME|ADDR")
@click.option("--key", "key_name", required=True, metavar="NAME",
              help="The account's own key, or the agent's own key to renounce the approval.")
@common_options
def agent_revoke(agent_ref: str, key_name: str, **opts: Any) -> None:
    """Revoke an agent of --key (or, signed by the agent key itself, renounce the approval):
    from the next transaction on, it acts for its own address.

    Example: bookchain keys agent revoke alice-bot --key alice
    """
    address = address_from_text(get_ctx().address(agent_ref))
    submit(RevokeAgent(address), key_name, **opts)


@agent.command("list")
@click.option("--key", "key_name", required=True, metavar="NAME", help="The account's key (or an address).")
@node_option
@home_option
@json_option
def agent_list(key_name: str, as_json: bool) -> None:
    """The agents and sub-accounts of --key's account, from the node.

    Example: bookchain keys agent list --key alice
    """
    ctx = get_ctx()
    doc = translate_errors(lambda: ctx.client().account(ctx.address(key_name)))
    out = {"agents": doc.get("agents", []), "sub_accounts": doc.get("sub_accounts", [])}
    if as_json:
        print_json(out)
        return
    t = Table(title="agents", title_justify="left")
    for col in ("name", "address", "valid until"):
        t.add_column(col)
    for a in out["agents"]:
        until = int(a.get("valid_until_ms") or 0)
        t.add_row(str(a.get("name")), str(a.get("address")),
                  time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(until / 1000)) if until else "until revoked")
    console().print(t)
    s = Table(title="sub-accounts", title_justify="left")
    for col in ("name", "address"):
        s.add_column(col)
    for x in out["sub_accounts"]:
        s.add_row(str(x.get("name")), str(x.get("address")))
    console().print(s)
