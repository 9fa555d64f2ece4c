"""`s2 schema NAME --yaml`: a commented YAML of every field of a configuration schema with its default, read from the
pydantic models themselves (descriptions as comments, defaults as values), so it cannot drift from them.

A section (a nested model) is written field by field with the values of the default it is built with (GRPO's `lora`
defaults to enabled, whatever LoraConfig's own default says); a field without a default is written `null` under a
`REQUIRED` comment; a section that defaults to null is written null, with its fields commented out below.
Loading the template and filling in the required fields gives the schema's defaults.
"""

from __future__ import annotations

import textwrap
import types
import typing

import yaml
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

WIDTH = 118


def _model_class(annotation) -> type[BaseModel] | None:
    """The model a field holds (`Model` or `Model | None`), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def _flow(value) -> str:
    """A value as one line of YAML (flow style for mappings and lists)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False).strip().removesuffix("\n...")


def _comment(text: str, indent: str) -> list[str]:
    width = WIDTH - len(indent) - 2
    lines = textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)
    return [f"{indent}# {line}" for line in lines]


def _section_doc(cls: type[BaseModel]) -> str:
    doc = cls.__doc__ or ""
    return "" if doc == BaseModel.__doc__ else doc


def _fields(cls: type[BaseModel], values: dict | None, indent: str) -> list[str]:
    """The lines of a model's fields; `values` are the defaults to show (None: the class's own)."""
    lines: list[str] = []
    for name, field in cls.model_fields.items():
        required = field.default is PydanticUndefined and field.default_factory is None
        if values is not None and name in values:
            value = values[name]
        elif required:
            value = None
        else:
            value = field.get_default(call_default_factory=True)
            value = _json(value, field.annotation)
        section = _model_class(field.annotation)
        if lines and not indent:
            lines.append("")
        described = field.description or (_section_doc(section) if section else "")
        lines += _comment(described, indent) if described else []
        if section is not None and (value is not None or (required and field.annotation is section)):
            lines += _comment(_section_doc(section), indent) if field.description and _section_doc(section) else []
            if required:
                lines.append(f"{indent}# REQUIRED section")
            lines.append(f"{indent}{name}:")
            lines += _fields(section, value, indent + "  ")
            continue
        if section is not None:  # a section that defaults to null: its fields, commented out
            lines.append(f"{indent}# when set, e.g.:")
            lines.append(f"{indent}# {name}:")
            lines += [f"{indent}# {line[len(indent) :]}" for line in _fields(section, None, indent + "  ")]
        if required:
            lines.append(f"{indent}# REQUIRED")
        lines.append(f"{indent}{name}: {_flow(value)}")
    return lines


def _json(value, annotation):
    """A default as plain YAML data (tuples as lists, models and enums as their values)."""
    return TypeAdapter(annotation).dump_python(value, mode="json")


def config_template(cls: type[BaseModel], command: str) -> str:
    """The commented YAML of `cls`, headed by how to use it."""
    head = [
        f"# Every field of {cls.__name__} with its default (`s2 schema ... --yaml`). Copy, keep what you change, and",
        f"# run `{command}`. Fields marked REQUIRED have no default.",
    ]
    doc = _section_doc(cls)
    body = _comment(doc, "") + [""] if doc else []
    return "\n".join([*head, "", *body, *_fields(cls, None, "")]) + "\n"
