"""The node's log: every record, the libraries' too, is one formatted line in the log file and
on stderr; libp2p's shutdown warnings (which carry a cancelled task's traceback in their text)
show no traceback. Run in a child process: the setup replaces the root logger's handlers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    import libp2p  # imported first, as the p2p worker does: its import detaches its logger
    from node.main import setup_logging

    setup_logging(Path(sys.argv[1]))
    import libp2p.network.swarm  # a later import of libp2p's modules changes nothing
    swarm = logging.getLogger("libp2p.network.swarm")
    swarm.warning("[ADDCONN_FAIL] add_conn failed: %r\\n%s", "Cancelled()",
                  "Traceback (most recent call last):\\n  File \\"swarm.py\\"")
    try:
        raise RuntimeError("inner\\nsecond line")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    swarm.info("below the libraries' level")
    logging.getLogger("bookchain.node").info("own record\\nkeeps its lines")
""")


def test_library_records_are_one_formatted_line_in_the_file_and_on_stderr(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "node.log"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(log_file)], capture_output=True,
                          text=True, timeout=60, check=True)
    for text in (log_file.read_text(), done.stderr):
        assert "Traceback" not in text and "second line" not in text
        lines = text.splitlines()
        assert [line.split(" ", 2)[1:] for line in lines[:2]] == [
            ["WARNING", "libp2p.network.swarm [ADDCONN_FAIL] add_conn failed: 'Cancelled()'"],
            ["ERROR", "aiohttp.server Error handling request: RuntimeError: inner"],
        ]
        assert "below the libraries' level" not in text
        assert lines[2].endswith("INFO bookchain.node own record") and lines[3] == "keeps its lines"


def test_the_stderr_level_keeps_only_warnings_there_and_every_record_in_the_file(tmp_path: Path) -> None:
    # what ``bookchain node start --stderr-level WARNING`` sets (and the p2p worker inherits):
    # a devnet's stdout.log gets the warnings, not a second copy of every line
    log_file = tmp_path / "logs" / "node.log"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(log_file)], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ, "BOOKCHAIN_LOG_STDERR": "WARNING"})
    assert "own record" in log_file.read_text()
    assert "add_conn failed" in done.stderr and "Error handling request" in done.stderr
    assert "own record" not in done.stderr
