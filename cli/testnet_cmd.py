"""``bookchain testnet``: write validator homes for given hosts (CometBFT's ``testnet``).

Thin click layer over devnet/testnet.py: parse options, write the files, print where each
home goes and how to start it. Nothing is started here: the homes are meant for other
machines.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from cli import render
from cli.context import json_option_saying, print_json
from devnet import ethaccounts
from devnet.genesis import DEFAULT_FUTURE_EXPIRY_S
from devnet.testnet import (
    CHAIN_ID,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_PORT,
    DEFAULT_TRADERS,
    TestnetError,
    TestnetSpec,
    create_testnet,
    parse_hosts,
)


@click.command("testnet")
@click.option("--hosts", "hosts_text", required=True, metavar="A,B,C,D",
              help="One validator per entry: the IP address or DNS name its peers and clients reach it at. "
                   "A host named twice gets a second node with both ports 2 higher.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write (must be empty or absent): node0..N-1, cli/, genesis.json, devnet.json.")
@click.option("--p2p-port", default=DEFAULT_P2P_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="p2p (libp2p TCP) port of every node.")
@click.option("--rpc-port", default=DEFAULT_RPC_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="RPC (HTTP, websocket, Hyperliquid API) port of every node.")
@click.option("--bind-all", is_flag=True,
              help="Listen on 0.0.0.0 instead of each host's own address (a host behind NAT, whose public "
                   "address is not on an interface). DNS names always listen on 0.0.0.0.")
@click.option("--chain-id", default=CHAIN_ID, show_default=True, help="Chain id of the genesis document.")
@click.option("--traders", default=DEFAULT_TRADERS, show_default=True, type=click.IntRange(0, 10_000),
              help="Funded trader0..N-1 CLI accounts (for `bookchain devnet load --home OUT`).")
@click.option("--eth-accounts", "eth_accounts", default=0, show_default=True,
              type=click.IntRange(0, ethaccounts.MAX_ETH_ACCOUNTS), metavar="N",
              help="Fund the devnet's well-known Ethereum test keys eth0..N-1 (public keys: only on a "
                   "network nobody else can reach).")
@click.option("--future-expiry", "future_expiry", default=DEFAULT_FUTURE_EXPIRY_S, show_default=True,
              type=click.IntRange(0, 10**9), metavar="SECONDS",
              help="BTC-FUT (market 4) expires this many seconds after genesis; 0 leaves it out.")
@json_option_saying("Print the testnet manifest (chain id, nodes with hosts, ports, peer ids) as JSON.")
def testnet(hosts_text: str, out: Path, p2p_port: int, rpc_port: int, bind_all: bool, chain_id: str,
            traders: int, eth_accounts: int, future_expiry: int, as_json: bool) -> None:
    """Write homes for validators on separate machines: one genesis, a home per host.

    Each OUT/nodeI holds the validator key, the p2p identity, genesis.json and a config.json
    whose peers are the other hosts' addresses and peer ids. Copy OUT/nodeI to host I and run
    `bookchain node start --home nodeI` there. OUT/cli holds the funded CLI keys (alice, bob,
    traders, and the bridge key that signs deposits: keep it safe). `bookchain devnet status
    --home OUT` and `bookchain devnet load --home OUT` reach the nodes on their hosts.

    Example: bookchain testnet --hosts 10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 --out mytestnet
    """
    try:
        spec = TestnetSpec(hosts=parse_hosts(hosts_text), p2p_port=p2p_port, rpc_port=rpc_port,
                           bind_all=bind_all, chain_id=chain_id, traders=traders, eth_accounts=eth_accounts,
                           future_expiry_s=future_expiry)
        m = create_testnet(out, spec)
    except TestnetError as err:
        raise click.BadParameter(str(err), param_hint="--hosts") from None
    except FileExistsError as err:
        raise click.BadParameter(str(err), param_hint="--out") from None
    if as_json:
        print_json(m.to_json())
        return
    t = Table(title=f"testnet {m.chain_id} in {out}", title_justify="left")
    for col in ("home", "host", "rpc", "p2p"):
        t.add_column(col)
    for n in m.nodes:
        t.add_row(n.home, n.host, n.rpc_url, n.p2p_addr)
    render.console().print(t)
    click.echo(f"\nCLI keys: {m.cli_home} ({', '.join([*m.accounts[:4], 'bridge'])}"
               f"{', ...' if len(m.accounts) > 4 else ''})")
    click.echo("next: copy each nodeI to its host and run there:  bookchain node start --home nodeI")
    click.echo(f"then: bookchain devnet status --home {out}")
