"""A small static file server for bench/snippet/run.py, run in its own process (so it never shares a GIL
with the runner): ``python fileserver.py DIRECTORY PORT``.

HTTP/1.1 with keep-alive, on 127.0.0.1 (Chromium maps ``*.test`` there). Every response carries
``Access-Control-Allow-Origin: *`` (GrowthBook's SDK fetches its payload cross-origin). Cache policy
by kind: pages ``no-store``; ``.js`` ``public, max-age=300`` (as Segmently serves ``/segmently.js``);
the GrowthBook payload under ``/api/features/`` ``public, max-age=30`` (as GrowthBook's CDN serves it).
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def handler(root: Path) -> type[BaseHTTPRequestHandler]:
    files = {"/" + p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            body = files.get(path)
            if path == "/favicon.ico":
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                return
            suffix = Path(path).suffix
            if path.startswith("/api/features/"):
                kind, cache = "application/json", "public, max-age=30"
            else:
                kind = TYPES.get(suffix, "application/octet-stream")
                cache = "public, max-age=300" if suffix == ".js" else "no-store"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    root, port = Path(sys.argv[1]), int(sys.argv[2])
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(root))
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
