"""Settings of the ``analysis`` and ``recommend`` config sections.

Every field and its default is written once, in ``config/schemas/config.schema.yaml``
(filled in by :func:`rmselect.config.section_settings`, nested objects included). The workflow
(``workflow/rules/analysis.smk``) reads settings only through :func:`analysis_settings`; its
other DAG-build helpers are in :mod:`rmselect.dag.analysis`.
"""

from __future__ import annotations

from typing import Any, Mapping

from rmselect.config import section_settings


def analysis_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config['analysis']`` with the schema's defaults, plus ``recommend`` and the study seed."""
    a = section_settings(config, "analysis")
    a["recommend"] = section_settings(config, "recommend")
    a["seed"] = int(config.get("seed", 0))
    filters = a["coverage"]["filters"] or []
    if not a["coverage"].get("compare_filter"):
        a["coverage"]["compare_filter"] = filters[-1]["name"] if filters else ""
    return a
