"""``bookchain keys``: create, list, show, import and export named signing keys."""

from __future__ import annotations

import click
from rich.table import Table

from cli.context import get_ctx, home_option, json_option_saying, print_json
from cli.render import console
from node.wallet.keystore import KeyStoreError, parse_seed


def _fail(err: KeyStoreError) -> click.UsageError:
    return click.UsageError(str(err))


@click.group("keys")
def keys() -> None:
    """Manage signing keys stored as HOME/keys/NAME.json (mode 0600)."""


@keys.command("new")
@click.argument("name")
@home_option
@json_option_saying("Print the new key's name, pubkey and address as JSON (never the seed).")
def keys_new(name: str, as_json: bool) -> None:
    """Generate a new ed25519 key called NAME and print its address (not its seed)."""
    try:
        rec = get_ctx().keystore.create(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    if as_json:
        print_json(rec.public_json())
    else:
        click.echo(f"created key {rec.name}\naddress {rec.address_text}\npubkey  {rec.pubkey_hex}")


@keys.command("list")
@home_option
@json_option_saying("Print the keys (name, pubkey, address) as a JSON list.")
def keys_list(as_json: bool) -> None:
    """List every key in the CLI home with its address."""
    ks = get_ctx().keystore
    try:
        records = ks.all()
    except KeyStoreError as err:
        raise _fail(err) from None
    if as_json:
        print_json([r.public_json() for r in records])
        return
    t = Table(title=f"keys in {ks.dir}", title_justify="left")
    for col in ("name", "address", "pubkey"):
        t.add_column(col)
    for r in records:
        t.add_row(r.name, r.address_text, r.pubkey_hex)
    console().print(t)


@keys.command("show")
@click.argument("name")
@click.option("--private", is_flag=True, help="Also print the secret seed (anyone with it can sign as you).")
@home_option
@json_option_saying("Print the key as JSON.")
def keys_show(name: str, private: bool, as_json: bool) -> None:
    """Show the address and public key of NAME."""
    try:
        rec = get_ctx().keystore.load(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    doc = rec.public_json()
    if private:
        doc["seed"] = rec.key.hex()
    if as_json:
        print_json(doc)
    else:
        for k, v in doc.items():
            click.echo(f"{k:8} {v}")


@keys.command("import")
@click.argument("name")
@click.argument("seed_hex", metavar="HEX")
@click.option("--force", is_flag=True, help="Replace an existing key of the same name.")
@home_option
@json_option_saying("Print the imported key's name, pubkey and address as JSON.")
def keys_import(name: str, seed_hex: str, force: bool, as_json: bool) -> None:
    """Store the 32-byte seed HEX (64 hex digits) under NAME."""
    try:
        rec = get_ctx().keystore.add(name, parse_seed(seed_hex), overwrite=force)
    except KeyStoreError as err:
        raise _fail(err) from None
    if as_json:
        print_json(rec.public_json())
    else:
        click.echo(f"imported key {rec.name}\naddress {rec.address_text}")


@keys.command("export")
@click.argument("name")
@home_option
def keys_export(name: str) -> None:
    """Print the secret seed of NAME as hex (for `keys import` elsewhere)."""
    try:
        rec = get_ctx().keystore.load(name)
    except KeyStoreError as err:
        raise _fail(err) from None
    click.echo(rec.key.hex())
