"""``Upgrade: h2c`` (RFC 7540 3.2, removed by RFC 9113) is refused cleanly: the request is
answered as the HTTP/1.1 request it also is, with no ``101`` and no ``upgrade`` field, on both
worker kinds. ``curl --http2`` on a cleartext URL sends exactly that upgrade; it must get its
answer over HTTP/1.1 and keep the connection usable. docs/http2.md says why (h2c smuggling
past proxies, and no browser ever used it); h2c with prior knowledge is the supported way."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from conftest import SERVER_KINDS, start_kind

from pounce.sync_protocol import RawRequest, RawResponse

pytestmark = pytest.mark.timeout(60)


class App:
    def handle_sync(self, request: RawRequest) -> RawResponse | None:
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        upgrade = dict(scope["headers"]).get(b"upgrade", b"-")
        text = b"%s %s %s %d" % (
            scope["http_version"].encode(),
            scope["method"].encode(),
            upgrade,
            len(body),
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text})


@pytest.fixture(scope="module", params=SERVER_KINDS)
def served(request: pytest.FixtureRequest) -> Any:
    handle = start_kind(str(request.param), App())
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_http2_on_cleartext_gets_http11(served: Any) -> None:
    url = f"http://127.0.0.1:{served.port}/up"
    # Two URLs on one curl run: the second reuses the connection, so it must still be a
    # sound HTTP/1.1 connection after the ignored upgrade.
    done = subprocess.run(
        ["curl", "-sv", "--http2", "-w", " %{http_version} %{num_connects}\n", url, url,
         "--data-binary", "payload"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "Upgrade: h2c" in done.stderr  # curl did ask
    # No "101 Switching Protocols" status line (a random x-request-id may contain "101").
    statuses = [line for line in done.stderr.splitlines() if line.startswith("< HTTP/")]
    assert statuses and all(" 101" not in line for line in statuses), statuses
    lines = done.stdout.splitlines()
    assert lines == ["1.1 POST h2c 7 1.1 1", "1.1 POST h2c 7 1.1 0"], done.stdout
