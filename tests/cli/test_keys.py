"""Key files: location, permissions, round trips, and the seed staying out of sight."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import bookchain
from node.wallet.keystore import KeyStore, KeyStoreError
from state.keys import PrivateKey, address_to_text


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(bookchain, ["--home", str(home), *args], catch_exceptions=False)


def test_new_writes_a_private_file_and_hides_the_seed(tmp_path: Path) -> None:
    res = run(tmp_path, "keys", "new", "alice")
    assert res.exit_code == 0, res.output
    path = tmp_path / "keys" / "alice.json"
    doc = json.loads(path.read_text())
    assert set(doc) == {"seed", "pubkey", "address"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = PrivateKey.from_hex(doc["seed"])
    assert doc["pubkey"] == key.pubkey.hex() and doc["address"] == address_to_text(key.address)
    assert doc["seed"] not in res.output
    assert doc["address"] in res.output


def test_show_list_export_and_private(tmp_path: Path) -> None:
    run(tmp_path, "keys", "new", "alice")
    run(tmp_path, "keys", "new", "bob")
    seed = json.loads((tmp_path / "keys" / "alice.json").read_text())["seed"]
    shown = run(tmp_path, "keys", "show", "alice")
    assert shown.exit_code == 0 and seed not in shown.output
    assert seed in run(tmp_path, "keys", "show", "alice", "--private").output
    assert run(tmp_path, "keys", "export", "alice").output.strip() == seed
    listed = json.loads(run(tmp_path, "keys", "list", "--json").output)
    assert [k["name"] for k in listed] == ["alice", "bob"]
    assert all("seed" not in k for k in listed)
    assert seed not in run(tmp_path, "keys", "list").output


def test_import_round_trip_and_refuses_overwrite(tmp_path: Path) -> None:
    key = PrivateKey(b"\x07" * 32)
    res = run(tmp_path, "keys", "import", "carol", key.hex())
    assert res.exit_code == 0, res.output
    assert KeyStore(tmp_path).load("carol").key.pubkey == key.pubkey
    again = run(tmp_path, "keys", "import", "carol", "08" * 32)
    assert again.exit_code == 2 and "already exists" in again.output
    assert KeyStore(tmp_path).load("carol").key.pubkey == key.pubkey
    forced = run(tmp_path, "keys", "import", "carol", "08" * 32, "--force")
    assert forced.exit_code == 0
    assert stat.S_IMODE((tmp_path / "keys" / "carol.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("bad", ["zz" * 32, "ab" * 31, "ab" * 33, ""])
def test_import_rejects_bad_seeds(tmp_path: Path, bad: str) -> None:
    assert run(tmp_path, "keys", "import", "x", bad).exit_code == 2


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_bad_names_are_usage_errors(tmp_path: Path, name: str) -> None:
    res = run(tmp_path, "keys", "new", name)
    assert res.exit_code == 2
    assert not any(tmp_path.rglob("*.json"))


def test_missing_key_lists_known_ones(tmp_path: Path) -> None:
    run(tmp_path, "keys", "new", "alice")
    res = run(tmp_path, "keys", "show", "nobody")
    assert res.exit_code == 2 and "alice" in res.output


def test_tampered_file_is_refused(tmp_path: Path) -> None:
    ks = KeyStore(tmp_path)
    ks.create("alice")
    path = ks.path("alice")
    doc = json.loads(path.read_text())
    doc["pubkey"] = "00" * 32
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="pubkey does not match"):
        ks.load("alice")


def test_list_shows_the_good_keys_and_reports_each_bad_file(tmp_path: Path) -> None:
    """One malformed file (and one that cannot be read at all: a directory named like a key
    file) made ``keys list`` fail outright; the others are listed, each bad file gets its
    own line on stderr, and there is no traceback."""
    ks = KeyStore(tmp_path)
    ks.create("alice")
    ks.create("zoe")
    (tmp_path / "keys" / "broken.json").write_text("{not json")
    (tmp_path / "keys" / "dir.json").mkdir()
    runner = CliRunner()
    for args in (["keys", "list", "--json"], ["keys", "list"]):
        res = runner.invoke(bookchain, ["--home", str(tmp_path), *args])
        assert res.exit_code == 0 and res.exception is None, res.output
        if "--json" in args:
            assert [k["name"] for k in json.loads(res.stdout)] == ["alice", "zoe"]
        else:
            assert "alice" in res.stdout and "zoe" in res.stdout
        lines = res.stderr.splitlines()
        assert len(lines) == 2 and "Traceback" not in res.output
        assert "broken.json: not JSON" in lines[0] and "dir.json: cannot be read" in lines[1]


def test_home_from_env(tmp_path: Path) -> None:
    res = CliRunner().invoke(bookchain, ["keys", "new", "eve"], env={"BOOKCHAIN_HOME": str(tmp_path)})
    assert res.exit_code == 0
    assert (tmp_path / "keys" / "eve.json").exists()
    # the subcommand's own --home wins over the group's
    other = tmp_path / "other"
    res = CliRunner().invoke(bookchain, ["keys", "new", "eve", "--home", str(other)], env={"BOOKCHAIN_HOME": str(tmp_path)})
    assert res.exit_code == 0 and (other / "keys" / "eve.json").exists()
