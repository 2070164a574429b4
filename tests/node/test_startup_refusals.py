"""A home whose genesis, validator key, p2p key or LevelDB stores cannot be read, or whose
block store lost blocks the state has applied, is refused at start with one CRITICAL line
and exit status 1: these reached the CLI as "unexpected error ... (a bug: please report it)"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.main import run


def home(tmp: Path) -> Path:
    (tmp / "config.json").write_text(json.dumps({"rpc": {"port": 0}, "p2p": {"listen": "/ip4/127.0.0.1/tcp/0"}}))
    return tmp


@pytest.mark.parametrize("name,text", [("genesis.json", "{]"), ("genesis.json", '{"validators": "x"}'),
                                       ("keys/validator.json", "{")])
def test_an_unreadable_document_refuses_to_start(tmp_path: Path, name: str, text: str) -> None:
    h = home(tmp_path)
    if name != "genesis.json":  # a good genesis, so the key is what fails
        from devnet.genesis import create_devnet
        create_devnet(tmp_path / "devnet")
        (h / "genesis.json").write_text((tmp_path / "devnet" / "genesis.json").read_text())
    (h / name).parent.mkdir(parents=True, exist_ok=True)
    (h / name).write_text(text)
    with pytest.raises(SystemExit) as exc:
        run(str(h))
    assert exc.value.code == 1
    log = (h / "logs" / "node.log").read_text()
    assert "refusing to start" in log and name.split("/")[-1] in log


def test_a_validator_key_whose_pubkey_is_not_its_seeds_refuses_to_start(tmp_path: Path) -> None:
    """An edited or mixed-up keys/validator.json started a node that signed as another key
    than the file said (a one-validator chain then stopped with nothing in the log)."""
    from devnet.genesis import create_devnet

    h = home(tmp_path)
    create_devnet(tmp_path / "devnet")
    (h / "genesis.json").write_text((tmp_path / "devnet" / "genesis.json").read_text())
    (h / "keys").mkdir()
    (h / "keys" / "validator.json").write_text(json.dumps({"seed": "11" * 32, "pubkey": "22" * 32}))
    with pytest.raises(SystemExit) as exc:
        run(str(h))
    assert exc.value.code == 1
    assert "is not its seed's" in (h / "logs" / "node.log").read_text()


@pytest.mark.parametrize("where", ["data", "data/state"])
def test_a_regular_file_where_a_store_belongs_is_named_not_called_a_full_disk(tmp_path: Path, where: str) -> None:
    """A state directory replaced by a regular file was refused as a failed write ("storage
    write failed ... EEXIST", exit 6, "free space or fix the disk"): it says what the path
    is, exit 1, no traceback, nothing written."""
    from devnet.genesis import create_devnet

    (tmp_path / "home").mkdir()
    h = home(tmp_path / "home")
    create_devnet(tmp_path / "devnet")
    (h / "genesis.json").write_text((tmp_path / "devnet" / "genesis.json").read_text())
    (h / where).parent.mkdir(parents=True, exist_ok=True)
    (h / where).write_text("not a store")
    with pytest.raises(SystemExit) as exc:
        run(str(h))
    assert exc.value.code == 1
    log = (h / "logs" / "node.log").read_text()
    assert f"refusing to start: {h / where} is not a directory (a regular file)" in log
    assert "disk" not in log and "Traceback" not in log
    assert (h / where).read_text() == "not a store"


def test_a_log_directory_that_is_a_file_refuses_to_start_in_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``logs`` replaced by a regular file: the log file cannot be opened, so there is no
    log to say it in; one line on stderr and exit 1 (before: a FileExistsError traceback)."""
    h = home(tmp_path)
    (h / "logs").write_text("not a directory")
    with pytest.raises(SystemExit) as exc:
        run(str(h))
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "refusing to start: the log file" in err and "Traceback" not in err


def test_a_wal_damaged_before_valid_records_refuses_to_start_with_exit_7(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The consensus WAL damaged in the middle: the node starts no further (exit 7, one
    line naming the file and what to do) and leaves the file for the operator."""
    from consensus.steps import RoundStep
    from consensus.wal import WalStep, encode_record
    from devnet.genesis import create_devnet
    from node.runtime import NodeRuntime

    async def no_network(*_: object) -> None:  # a node that got past its WAL stops here, not later
        raise AssertionError("the node started past a damaged WAL")

    monkeypatch.setattr(NodeRuntime, "_start_network", no_network)

    (tmp_path / "home").mkdir()
    h = home(tmp_path / "home")
    create_devnet(tmp_path / "devnet")
    (h / "genesis.json").write_text((tmp_path / "devnet" / "genesis.json").read_text())
    frames = [encode_record(WalStep(1, 0, step)) for step in (RoundStep.PROPOSE, RoundStep.PREVOTE)]
    damaged = bytearray(b"".join(frames))
    damaged[10] ^= 0x01
    (h / "data" / "wal").mkdir(parents=True)
    (h / "data" / "wal" / "wal.log").write_bytes(bytes(damaged))
    with pytest.raises(SystemExit) as exc:
        run(str(h))
    assert exc.value.code == 7
    log = (h / "logs" / "node.log").read_text()
    assert f"refusing to start: the consensus WAL {h / 'data' / 'wal' / 'wal.log'} is damaged at byte 0" in log
    assert "(exit 7)" in log and "Traceback" not in log
    assert (h / "data" / "wal" / "wal.log").read_bytes() == bytes(damaged)
