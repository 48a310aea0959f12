"""Fixtures for matching's unit tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORUK1 = FIXTURES / "oruk1-kirkstall-page.json"
ORUK3 = FIXTURES / "oruk3-chapeltown-page.json"


@pytest.fixture
def feed_server() -> Iterator[str]:
    """Serves ORUK 3.0 pages of one service each, and an ORUK 1.0 feed in Spring-style pages."""
    base = json.loads(ORUK3.read_text())
    valid = [r for r in base["contents"] if r.get("status")][:2]
    original = json.loads(ORUK1.read_text())["content"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            page = int(parse_qs(url.query).get("page", ["-1"])[0])
            if url.path == "/v3/services":
                number = max(page, 1)
                body = {
                    "total_items": 3,
                    "total_pages": 3,
                    "page_number": number,
                    "size": 1,
                    "first_page": number == 1,
                    "last_page": number == 3,
                    "empty": False,
                    "contents": [valid[(number - 1) % 2] | {"id": f"svc-{number}"}],
                }
            elif url.path == "/v1/services":
                number = max(page, 0)
                body = {
                    "totalElements": 4,
                    "totalPages": 2,
                    "number": number,
                    "size": 2,
                    "first": number == 0,
                    "last": number == 1,
                    "content": original[number * 2 : number * 2 + 2],
                }
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
