"""An EventBridge target's input: `Input`, `InputPath` or `InputTransformer`, as EventBridge
builds it (moto's own transformer does not quote string values in a JSON template)."""

from __future__ import annotations

import json
import re
from typing import Any

_PATH_PART = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def json_path(document: Any, path: str) -> Any:
    """`$`, `$.a.b`, `$.a[0].b`: the value, or None when a part is missing."""
    if not path.startswith("$"):
        return None
    value = document
    for name, index in _PATH_PART.findall(path[1:]):
        if name:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) \
                else None
        if value is None:
            return None
    return value


def target_input(target: dict[str, Any], event: dict[str, Any], rule_arn: str) -> Any:
    """What the target receives for `event`."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        return json_path(event, target["InputPath"])
    transformer = target.get("InputTransformer")
    if not transformer:
        return event
    values = {name: json_path(event, path)
              for name, path in (transformer.get("InputPathsMap") or {}).items()}
    values |= {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_arn.rsplit("/", 1)[-1],
        "aws.events.event": event,
        "aws.events.event.json": event,
        "aws.events.event.ingestion-time": event.get("time"),
    }
    text = fill_template(transformer["InputTemplate"], values)
    try:
        return json.loads(text)
    except ValueError:
        return text


def fill_template(template: str, values: dict[str, Any]) -> str:
    """Placeholders outside JSON strings become JSON values; inside strings, their text."""
    out: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(template):
        char = template[index]
        if char == "<":
            end = template.find(">", index)
            name = template[index + 1:end] if end > 0 else ""
            if name in values:
                out.append(_inside(values[name]) if in_string else json.dumps(values[name]))
                index = end + 1
                continue
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        out.append(char)
        index += 1
    return "".join(out)


def _inside(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return json.dumps(text)[1:-1]
