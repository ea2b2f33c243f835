"""A small CloudFormation resolver: what a template's values become once "deployed".

Intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split`, `Fn::If`,
`Fn::ImportValue`, `Fn::FindInMap`, `Fn::Base64`, `Fn::GetAZs`), pseudo parameters, the
template's parameters and `{{resolve:secretsmanager:...}}` dynamic references. Physical ids
and attributes come from a `Lookups` object (the deployment). What cannot be resolved becomes
a visible placeholder, `⟨unresolved: ...⟩`, so that it shows wherever it lands;
`placeholders_in` finds them.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from rehearsal.assembly import Stack

URL_SUFFIX = "amazonaws.com"
PARTITION = "aws"
_PLACEHOLDER = re.compile(r"⟨unresolved: ([^⟩]*)⟩")
_DYNAMIC = re.compile(r"\{\{resolve:(secretsmanager|ssm|ssm-secure):(.+?)\}\}")
_SUB = re.compile(r"\$\{([^}]*)\}")


def placeholder(what: str) -> str:
    return f"⟨unresolved: {what}⟩"


def placeholders_in(value: Any) -> list[str]:
    """Every placeholder inside `value` (strings, lists and dicts, recursively)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, dict):
        return [p for item in value.values() for p in placeholders_in(item)]
    if isinstance(value, list):
        return [p for item in value for p in placeholders_in(item)]
    return []


@dataclass
class Physical:
    """What CloudFormation knows of a deployed resource: its `Ref` and its attributes."""

    ref: Any
    attributes: dict[str, Any] = field(default_factory=dict)


class Lookups(Protocol):
    def physical(self, stack: Stack, logical_id: str) -> Physical | None: ...

    def export(self, name: str) -> Any: ...

    def secret_value(self, secret_id: str, json_key: str) -> str | None: ...


class _NoValue:
    """`AWS::NoValue`: the property or list item disappears."""


NO_VALUE = _NoValue()


class Resolver:
    def __init__(self, stack: Stack, lookups: Lookups) -> None:
        self.stack = stack
        self._lookups = lookups
        self._conditions: dict[str, bool] = {}

    # -- entry point ----------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        resolved = self._value(value)
        return self._dynamic_references(None if resolved is NO_VALUE else resolved)

    # -- intrinsics -----------------------------------------------------------------------
    def _value(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._value(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, argument)
        resolved = {k: self._value(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: Any) -> Any:
        name = str(self._value(name))
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        parameters = self.stack.template.get("Parameters", {})
        if name in parameters:
            return self._parameter(name, parameters[name])
        if name not in self.stack.resources:
            return placeholder(f"Ref {name} (no such resource in {self.stack.name})")
        physical = self._lookups.physical(self.stack, name)
        if physical is None:
            return placeholder(f"Ref {name} ({self._type_of(name)})")
        return physical.ref

    def _pseudo(self, name: str) -> Any:
        values = {
            "AWS::Region": self.stack.region,
            "AWS::AccountId": self.stack.account,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::Partition": PARTITION,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": (
                f"arn:{PARTITION}:cloudformation:{self.stack.region}:{self.stack.account}:"
                f"stack/{self.stack.stack_name}/rehearsal"
            ),
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        return values.get(name)

    def _parameter(self, name: str, declaration: dict[str, Any]) -> Any:
        kind = str(declaration.get("Type", ""))
        default = declaration.get("Default")
        if kind.startswith("AWS::SSM::Parameter::Value"):
            return placeholder(f"SSM parameter {default} (parameter {name})")
        if default is None:
            return placeholder(f"parameter {name} has no default")
        return default

    def _get_att(self, argument: Any) -> Any:
        argument = self._value(argument)
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        else:
            logical_id, attribute = str(argument[0]), str(argument[1])
        what = f"Fn::GetAtt {logical_id}.{attribute}"
        if logical_id not in self.stack.resources:
            return placeholder(f"{what} (no such resource in {self.stack.name})")
        physical = self._lookups.physical(self.stack, logical_id)
        if physical is None or attribute not in physical.attributes:
            return placeholder(f"{what} ({self._type_of(logical_id)})")
        return physical.attributes[attribute]

    def _join(self, argument: Any) -> Any:
        delimiter, items = self._value(argument)
        if not isinstance(items, list):
            return placeholder(f"Fn::Join over {items!r}")
        return str(delimiter).join(_text(item) for item in items)

    def _split(self, argument: Any) -> Any:
        delimiter, source = self._value(argument)
        return _text(source).split(str(delimiter))

    def _select(self, argument: Any) -> Any:
        index, items = self._value(argument)
        if not isinstance(items, list) or not 0 <= int(index) < len(items):
            return placeholder(f"Fn::Select {index} of {items!r}")
        return items[int(index)]

    def _sub(self, argument: Any) -> Any:
        if isinstance(argument, list):
            text, variables = argument[0], self._value(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and name.split(".", 1)[0] in self.stack.resources:
                return _text(self._get_att(name))
            return _text(self._ref(name))

        return _SUB.sub(replace, str(text))

    def _import(self, argument: Any) -> Any:
        name = str(self._value(argument))
        return self._lookups.export(name)

    def _if(self, argument: Any) -> Any:
        condition, when_true, when_false = argument
        return self._value(when_true if self._condition(str(condition)) else when_false)

    def _condition(self, name: str) -> bool:
        if name not in self._conditions:
            declared = self.stack.template.get("Conditions", {}).get(name)
            self._conditions[name] = bool(self._evaluate(declared))
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            (key, argument), = expression.items()
            if key == "Condition":
                return self._condition(str(argument))
            if key == "Fn::Equals":
                left, right = (self._evaluate(a) for a in argument)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate(argument[0])
            if key == "Fn::And":
                return all(self._evaluate(a) for a in argument)
            if key == "Fn::Or":
                return any(self._evaluate(a) for a in argument)
        return self._value(expression)

    def _find_in_map(self, argument: Any) -> Any:
        name, top, second = (str(part) for part in self._value(argument))
        found = self.stack.template.get("Mappings", {}).get(name, {}).get(top, {}).get(second)
        return placeholder(f"Fn::FindInMap {name}.{top}.{second}") if found is None else found

    def _base64(self, argument: Any) -> Any:
        return base64.b64encode(_text(self._value(argument)).encode()).decode()

    def _get_azs(self, argument: Any) -> Any:
        region = str(self._value(argument) or self.stack.region)
        return [f"{region}{letter}" for letter in "abc"]

    def _type_of(self, logical_id: str) -> str:
        return str(self.stack.resources.get(logical_id, {}).get("Type", "?"))

    # -- dynamic references ---------------------------------------------------------------
    def _dynamic_references(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._dynamic_references(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._dynamic_references(v) for v in value]
        if isinstance(value, str) and "{{resolve:" in value:
            return _DYNAMIC.sub(self._dynamic_reference, value)
        return value

    def _dynamic_reference(self, match: re.Match[str]) -> str:
        service, body = match.group(1), match.group(2)
        if service != "secretsmanager":
            return placeholder(f"{{{{resolve:{service}:{body}}}}}")
        parts = body.split(":")
        # An ARN names the secret with its own 7 colon-separated fields.
        cut = 7 if body.startswith("arn:") else 1
        secret_id, rest = ":".join(parts[:cut]), parts[cut:]
        json_key = rest[1] if len(rest) > 1 else ""
        if (rest[2:3] and rest[2]) or (rest[3:4] and rest[3]):
            return placeholder(f"secret {secret_id}: version stages/ids are not emulated")
        found = self._lookups.secret_value(secret_id, json_key)
        if found is None:
            return placeholder(f"secret {secret_id}{':' + json_key if json_key else ''}")
        return found


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


_FUNCTIONS = {
    "Ref": Resolver._ref,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Join": Resolver._join,
    "Fn::Split": Resolver._split,
    "Fn::Select": Resolver._select,
    "Fn::Sub": Resolver._sub,
    "Fn::ImportValue": Resolver._import,
    "Fn::If": Resolver._if,
    "Fn::FindInMap": Resolver._find_in_map,
    "Fn::Base64": Resolver._base64,
    "Fn::GetAZs": Resolver._get_azs,
}
