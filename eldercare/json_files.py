"""Reading a JSON document an operator wrote (`eldercare register`, `eldercare workers
add`): the file's own errors, and a schema's, as one line that names the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """A document's model: a misspelt key is an error, not a default."""

    model_config = ConfigDict(extra="forbid")


def read_json(file: str) -> object:
    """The file's JSON; ValueError saying why it cannot be read or is not JSON."""
    try:
        return json.loads(Path(file).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {file}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file} is not JSON: {exc}") from None


def validated(model: type[Model], data: object) -> Model:
    """``data`` as ``model``; ValueError naming every field that is wrong, e.g.
    ``residents.3.birth_year: Field required``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(problems) from None
