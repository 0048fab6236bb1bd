"""Mistakes a user makes on the command line end in one line naming the fix."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CITYMESH = [sys.executable, "-m", "citymesh.cli"]


def _run(
    *args: str, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CITYMESH, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def _assert_rejected(result: subprocess.CompletedProcess[str], *words: str) -> None:
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, text
    assert "Traceback" not in text
    for word in words:
        assert word in text, text


@pytest.fixture
def not_citymesh() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that responds to every POST with a web page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"<html>not an API</html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_demo_negative_speed_names_option(tmp_path: Path) -> None:
    _assert_rejected(_run("demo", "--speed", "-1", cwd=tmp_path), "--speed")


def test_demo_port_out_of_range_names_option(tmp_path: Path) -> None:
    _assert_rejected(_run("demo", "--http-port", "99999", cwd=tmp_path), "--http-port")


def test_server_missing_tls_file_names_key_and_path(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("x")
    config = tmp_path / "server.toml"
    config.write_text(
        f'[http]\ntls_certfile = "{tmp_path / "absent.pem"}"\ntls_keyfile = "{key}"\n'
    )

    result = _run("server", "--config", str(config), cwd=tmp_path)

    _assert_rejected(result, "tls_certfile", "absent.pem", "does not exist")


def test_server_tls_files_not_a_pair_rejected(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    config = tmp_path / "server.toml"
    config.write_text(f'[http]\ntls_certfile = "{junk}"\ntls_keyfile = "{junk}"\n')

    result = _run("server", "--config", str(config), cwd=tmp_path)

    _assert_rejected(result, "junk.pem", "private key")


def test_enroll_api_not_a_url_rejected(tmp_path: Path) -> None:
    result = _run(
        "gateway", "enroll", "--token", "cme_x_y", "--api", "notaurl", cwd=tmp_path
    )
    _assert_rejected(result, "--api", "notaurl", "http://")


def test_enroll_answer_not_a_login_rejected(tmp_path: Path, not_citymesh: str) -> None:
    result = _run(
        "gateway", "enroll", "--token", "cme_x_y", "--api", not_citymesh, cwd=tmp_path
    )
    _assert_rejected(result, not_citymesh, "--api")


def test_gateway_missing_ca_file_rejected(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gw"}"\n[mqtt]\nurl = "mqtts://127.0.0.1:1"\n'
        f'ca_file = "{tmp_path / "absent-ca.pem"}"\n'
    )

    result = _run("gateway", "--config", str(config), cwd=tmp_path)

    _assert_rejected(result, "absent-ca.pem")


def test_admin_without_config_names_registry(tmp_path: Path) -> None:
    result = _run("admin", "tenant", "create", "acme", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "no --config given" in result.stderr
    assert "registry.sqlite" in result.stderr
