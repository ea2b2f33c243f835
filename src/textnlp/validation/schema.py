"""The JSON schema a dataset's texts should satisfy, from the template that generated them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textnlp.validation.loader import DatasetRow


def schema_for(rows: Sequence[DatasetRow]) -> dict[str, Any] | None:
    """The JSON schema of the rows' template (``provenance.template_id``) if it asks for JSON.

    A JSON template without a schema gives ``{}`` (any JSON object passes); text templates, an
    unknown template or mixed templates give None (no JSON check). Rows name catalogue ids, so
    the lookup never reads a path (a dataset's rows may come from anyone).
    """
    ids = {row.template_id for row in rows}
    if len(ids) != 1 or None in ids:
        return None
    from textnlp.errors import TemplateNotFound
    from textnlp.generation.templates import TemplateLibrary

    try:
        template = TemplateLibrary.load().by_id(str(ids.pop()))
    except TemplateNotFound:
        return None
    if template.output.type != "json":
        return None
    return dict(template.output.json_schema or {})
