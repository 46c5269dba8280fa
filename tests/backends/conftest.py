"""The API backend tests' helpers (llama_server.py, fault_proxy.py, latency_server.py) live next to them;
their fixtures (the real llama.cpp server, the dummy key) are in tests/conftest.py, shared with
tests/scoring."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
