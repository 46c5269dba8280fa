"""The import tests share tests/importers/import_helpers.py (spec, files, the CLI subprocess)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
