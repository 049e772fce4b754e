"""Reading YAML files that a person wrote (key files, medium configuration), with one error.

PyYAML's safe loader raises ``yaml.YAMLError`` for text it cannot parse, but its constructors
let Python's own exceptions out for scalars they cannot build: ``!!int`` with no value
(IndexError), ``!!int abc`` (ValueError), the date ``2001-02-30`` (ValueError), an empty
``!!bool`` (KeyError), a ``!!timestamp`` that is no date (AttributeError); nesting deeper than
Python's recursion limit (``[`` x 3000) raises RecursionError. File bytes that are not UTF-8
raise UnicodeDecodeError. Each becomes the caller's ConfigError subclass with a one-line
message naming the file (the CLI prints it as is). Found by fuzzing (bench/fuzz).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from lora_telemetry.core.errors import ConfigError

#: What yaml.safe_load raises besides YAMLError (see the module notes).
_CONSTRUCTOR_ERRORS = (ValueError, KeyError, IndexError, AttributeError)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def read_text(path: str | os.PathLike[str], source: str,
              error: type[ConfigError] = ConfigError) -> str:
    """The file's text (UTF-8); unreadable or undecodable files raise ``error``."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text (byte 0x{raw[exc.start]:02X} at offset "
                    f"{exc.start})") from None


def load_yaml(text: str, source: str, error: type[ConfigError] = ConfigError) -> Any:
    """``yaml.safe_load(text)``; any failure raises ``error`` ("<source>: not valid YAML: ...")."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {_one_line(exc)}") from None
    except _CONSTRUCTOR_ERRORS as exc:
        raise error(f"{source}: not valid YAML: a value cannot be read "
                    f"({type(exc).__name__}: {_one_line(exc)})") from None
    except RecursionError:
        raise error(f"{source}: not valid YAML: nested too deeply") from None
