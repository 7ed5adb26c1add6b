"""The official SDK's models as an oracle: a payload must parse, and carry nothing they do not declare."""

import pydantic


def assert_documented(model: type[pydantic.BaseModel], payload):
    """`model.model_validate(payload)`, failing on any field the SDK's models do not declare, at any depth.

    The SDK's models accept unknown fields (`extra="allow"`); a field only the sandbox sends
    would let the product depend on something ElevenLabs never sends.
    """
    parsed = model.model_validate(payload)
    extras = list(_undeclared(parsed, model.__name__))
    assert not extras, f"fields the SDK does not declare: {extras}"
    return parsed


def _undeclared(value, path: str):
    if isinstance(value, pydantic.BaseModel):
        yield from (f"{path}.{name}" for name in value.model_extra or {})
        for name in type(value).model_fields:
            yield from _undeclared(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _undeclared(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _undeclared(item, f"{path}.{key}")
