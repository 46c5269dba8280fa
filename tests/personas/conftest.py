"""The persona tests share tests/personas/persona_helpers.py (a small survey with personas)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
