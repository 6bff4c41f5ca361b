"""Report tests: plain records in, files out. The bundle reads the scripted cluster (tests/gate)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gate"))
