"""Paths of the IQRF and Intel lab test fixtures (see each folder's SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
DPA_EXAMPLES = FIXTURES / "iqrf"
DAEMON_EXAMPLES = FIXTURES / "iqrf" / "daemon_examples"
INTEL_LAB = FIXTURES / "intel_lab"
ULB_LIBRARY = FIXTURES / "ulb_library_wsn"
