"""The JSON schema a dataset's texts should satisfy, from the template that generated them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from textnlp.validation.loader import DatasetRow

if TYPE_CHECKING:
    from textnlp.generation.templates import TemplateLibrary


def schema_for(rows: Sequence[DatasetRow]) -> dict[str, Any] | None:
    """The JSON schema of the rows' template (``provenance.template_id``) if it asks for JSON.

    A JSON template without a schema gives ``{}`` (any JSON object passes); text templates, an
    unknown template, another version of it, mixed templates or a recipe's rows give None (no
    JSON check): a user's template or recipe may share a catalogue id. Rows name catalogue ids,
    so the lookup never reads a path (a dataset's rows may come from anyone).
    """
    return template_schema((row.template_id, row.template_version) for row in rows)


#: A row's maker: (``provenance.template_id``, ``provenance.template_version``).
MadeBy = tuple[str | None, str | None]


def template_schema(
    made_by: Iterable[MadeBy], templates: TemplateLibrary | None = None
) -> dict[str, Any] | None:
    """``schema_for`` of rows made by ``made_by`` (one pair per row, or the distinct pairs),
    looked up in ``templates`` (the installation's, its user templates with the catalogue's;
    None: the built-in catalogue)."""
    makers = set(made_by)
    if len(makers) != 1:
        return None
    template_id, version = makers.pop()
    if template_id is None:
        return None
    from textnlp.errors import TemplateNotFound
    from textnlp.generation.templates import TemplateLibrary

    try:
        template = (templates or TemplateLibrary.load()).by_id(template_id)
    except TemplateNotFound:
        return None
    if template.version != version or template.output.type != "json":
        return None
    return dict(template.output.json_schema or {})
