"""Convert your own download of GlobalOpinionQA (CC BY-NC-SA 4.0, not shipped with probekit) into a survey:

    python surveys/build/globalopinionqa.py path/to/global_opinions.csv surveys/local/ [--positions none] [--limit N]

writes surveys/local/globalopinionqa.yaml and .jsonl (keep them out of the Apache-2.0 package). The conversion is
probekit.importers.globalopinionqa (docs/human-alignment.md); an OpinionQA wave folder converts the same way with
`python -m probekit.importers.opinionqa WAVE_DIR OUT_DIR`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from probekit.importers.globalopinionqa import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
