"""What a stored run says about how it was made: the content hash of each survey spec and the versions of
the packages that shape results (used by runs and by imports alike)."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

from probekit.hashing import sha256_hex

if TYPE_CHECKING:
    from probekit.survey.schema import Survey

TRACKED_PACKAGES = ("probekit", "transformers", "torch", "litellm", "duckdb", "numpy", "llama_cpp_python")


def survey_hash(survey: Survey) -> str:
    """sha256 of the validated spec (what ran, with an experiment's settings applied)."""
    return sha256_hex(survey.model_dump_json())


def package_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return versions
