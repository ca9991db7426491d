"""``--env-file``: ``KEY=VALUE`` lines loaded into the environment before anything reads it.

The app reads its settings from the environment (``DATABASE_URL`` ...), and so does pounce
(``POUNCE_*``), so the file is loaded first. As with uvicorn's ``--env-file`` (python-dotenv's
default), a variable that is already set wins over the file: the shell, systemd or a container
runtime can still override one value without editing the file.

Format, one assignment per line (the common subset of what dotenv tools read)::

    # a comment
    export DATABASE_URL=postgres://db/app    # "export " is allowed and ignored
    GREETING="hello\\nworld"                  # double quotes: \\n \\t \\" \\\\ escapes
    PATTERN='a#b'                            # single quotes: taken literally
    PLAIN=value # a trailing comment needs a space before the #

Anything else is an error that names the file and the line, rather than a silently skipped
setting.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from pathlib import Path
from typing import Final

from pounce.errors import ConfigError

__all__ = ["load_env_file", "parse_env_file"]

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def load_env_file(path: str, environ: MutableMapping[str, str]) -> dict[str, str]:
    """Set the file's variables that ``environ`` does not have yet; returns those it set."""
    added: dict[str, str] = {}
    for name, value in parse_env_file(path).items():
        if name not in environ:
            environ[name] = value
            added[name] = value
    return added


def parse_env_file(path: str) -> dict[str, str]:
    file = Path(path)
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise ConfigError(f"--env-file {path!r} {what}", hint="env_file")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--env-file {path!r} cannot be read: {exc}", hint="env_file") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, value = _assignment(line)
        except ValueError as exc:
            raise ConfigError(
                f"--env-file {path!r}, line {number}: {exc} (in {raw.strip()!r})", hint="env_file"
            ) from None
        values[name] = value
    return values


def _assignment(line: str) -> tuple[str, str]:
    if line.startswith("export "):
        line = line.removeprefix("export ").lstrip()
    name, sep, rest = line.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError("expected NAME=VALUE")
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a variable name")
    rest = rest.strip()
    if rest[:1] == "'":
        end = rest.find("'", 1)
        if end < 0:
            raise ValueError("the single quote is not closed")
        _only_comment_after(rest[end + 1 :])
        return name, rest[1:end]
    if rest[:1] == '"':
        return name, _double_quoted(rest)
    value, _hash, _comment = rest.partition(" #")
    return name, value.strip()


def _double_quoted(rest: str) -> str:
    out: list[str] = []
    index = 1
    while index < len(rest):
        char = rest[index]
        if char == "\\" and index + 1 < len(rest):
            following = rest[index + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            index += 2
            continue
        if char == '"':
            _only_comment_after(rest[index + 1 :])
            return "".join(out)
        out.append(char)
        index += 1
    raise ValueError("the double quote is not closed")


def _only_comment_after(tail: str) -> None:
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise ValueError(f"unexpected {tail!r} after the quoted value")
