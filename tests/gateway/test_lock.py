"""One gateway process per reading buffer: a second one gets the first one's PID."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citymesh.cli import app
from citymesh.gateway.buffer import ReadingBuffer
from citymesh.gateway.lock import BufferInUse


def _holder(path: Path) -> subprocess.Popen[str]:
    """Start a process that opens the buffer at `path` and waits."""
    code = textwrap.dedent(
        f"""
        from pathlib import Path
        from citymesh.gateway.buffer import ReadingBuffer
        buffer = ReadingBuffer(Path({str(path)!r}), max_bytes=1 << 20, max_age_s=60)
        print("open", flush=True)
        input()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "open"
    return process


def test_buffer_lock_rejects_second_process(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"
    holder = _holder(path)
    try:
        with pytest.raises(BufferInUse) as caught:
            ReadingBuffer(path, max_bytes=1 << 20, max_age_s=60)
    finally:
        holder.kill()
        holder.communicate()

    assert f"PID {holder.pid}" in str(caught.value)
    assert "data_dir" in str(caught.value)
    # A killed holder leaves no stale lock.
    reopened = ReadingBuffer(path, max_bytes=1 << 20, max_age_s=60)
    reopened.close()


def test_buffer_reopens_after_close(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite"
    ReadingBuffer(path, max_bytes=1 << 20, max_age_s=60).close()
    ReadingBuffer(path, max_bytes=1 << 20, max_age_s=60).close()


def test_gateway_cli_rejects_shared_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "gw"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'gateway = "gw-1"\ndata_dir = "{data_dir}"\n'
        '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
    )
    holder = _holder(data_dir / "gw-1.buffer.sqlite")
    try:
        result = CliRunner().invoke(app, ["gateway", "--config", str(config)])
    finally:
        holder.kill()
        holder.communicate()

    assert result.exit_code == 2, result.output
    assert f"PID {holder.pid}" in result.output
    assert "Traceback" not in result.output
