"""YAML as users' files (templates, recipes, gates) are read: safe, and strict where PyYAML
is lax.

``UniqueKeyLoader`` is ``yaml.SafeLoader`` that refuses

- a key given twice in one mapping: YAML forbids it, and PyYAML kept the last one silently
  (a recipe's column or ``output:`` given twice ran the second without a word);
- a date that does not exist (``2024-13-01``, ``2024-02-30``): PyYAML raised a bare
  ``ValueError`` ("month must be in 1..12"), a traceback where every other mistake in the file
  is a ``yaml.YAMLError`` with its line and column.

Both are ``yaml.constructor.ConstructorError``s (``yaml.YAMLError``s) whose problem says where
(``(line 3, column 5)``) and quotes none of the file's lines.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from textnlp.errors import quoted


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, refusing repeated keys and impossible dates."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{quoted(node.value)} is not a valid date or time ({exc}){_at(node)}"
            ) from None


def _at(node: yaml.Node) -> str:
    return f" (line {node.start_mark.line + 1}, column {node.start_mark.column + 1})"


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base" may be overridden
            continue
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            continue  # construct_mapping refuses it below
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {quoted(key)} is given twice{_at(key_node)}"
            )
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
UniqueKeyLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", UniqueKeyLoader.construct_yaml_timestamp
)


def load(text: str) -> Any:
    """The YAML document ``text`` (``yaml.YAMLError`` for a repeated key or impossible date)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
