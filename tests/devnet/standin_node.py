"""A stand-in for `bookchain node start`, so supervisor tests don't depend on the node.

Reads DIR/config.json, serves /status on the configured RPC port with a height that grows
every 50 ms. Behaviour by $STANDIN_MODE: ok (default), crash (exit 1 at once after a log
line), stall (height stays 0), stubborn (ignores SIGTERM, so `down` must SIGKILL it).
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

START = time.monotonic()


def main() -> None:
    home = Path(sys.argv[sys.argv.index("--home") + 1])
    cfg = json.loads((home / "config.json").read_text())
    mode = os.environ.get("STANDIN_MODE", "ok")
    print(f"standin {cfg['moniker']} mode={mode} pid={os.getpid()}", flush=True)
    (home / "logs").mkdir(exist_ok=True)
    (home / "logs" / "node.log").write_text(f"standin {cfg['moniker']} log\n")  # as a node's log file
    if mode == "crash":
        print("fatal: cannot open data/state (simulated)", file=sys.stderr, flush=True)
        sys.exit(1)
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            height = 0 if mode == "stall" else int((time.monotonic() - START) / 0.05)
            if self.path.startswith("/status"):
                doc: dict[str, object] = {"node_id": "standin", "moniker": cfg["moniker"], "chain_id": "standin",
                                          "latest_height": height, "catching_up": False, "peers": ["a", "b"]}
            elif self.path.startswith("/block_results"):
                h = int(self.path.split("height=")[1])
                doc = {"height": h, "app_hash": f"{h:064x}", "receipts": []}
            else:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer((cfg["rpc"]["host"], cfg["rpc"]["port"]), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
