"""Import responses collected elsewhere (generic JSONL, published POBs JSON, published MoralChoice CSVs) so
they are stored and analysed like probekit's own runs. Formats: docs/import-format.md."""

from probekit.importers.core import FORMATS, BadRows, ImportRefused, ImportSummary, detect_format, import_responses
from probekit.importers.records import Parsed, Response, RowProblem

__all__ = ["FORMATS", "BadRows", "ImportRefused", "ImportSummary", "Parsed", "Response", "RowProblem",
           "detect_format", "import_responses"]
