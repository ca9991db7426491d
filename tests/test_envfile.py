"""``--env-file`` parsing: the dotenv subset pounce reads, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pounce.envfile import load_env_file, parse_env_file
from pounce.errors import ConfigError


def _parse(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return parse_env_file(str(path))


def test_forms(tmp_path: Path) -> None:
    values = _parse(
        tmp_path,
        "# comment\n"
        "\n"
        "PLAIN=value # trailing comment\n"
        "export EXPORTED=yes\n"
        "SPACED = around \n"
        "EMPTY=\n"
        "SINGLE='a#b \\n $HOME'\n"
        'DOUBLE="line1\\nline2 \\"quoted\\" \\\\ end" # comment\n'
        "URL=postgres://u:p@db/app?x=1#frag\n",
    )
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "around",
        "EMPTY": "",
        "SINGLE": "a#b \\n $HOME",
        "DOUBLE": 'line1\nline2 "quoted" \\ end',
        "URL": "postgres://u:p@db/app?x=1#frag",
    }


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("no assignment here", "line 1: expected NAME=VALUE"),
        ("1BAD=x", "'1BAD' is not a variable name"),
        ("A='open", "the single quote is not closed"),
        ('A="open', "the double quote is not closed"),
        ('A="x" trailing', "unexpected 'trailing' after the quoted value"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(tmp_path, line + "\n")
    assert fragment in info.value.message
    assert "--env-file" in info.value.message


def test_variables_already_set_win(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=file\nB=file\n", encoding="utf-8")
    environ = {"A": "shell"}
    added = load_env_file(str(path), environ)
    assert environ == {"A": "shell", "B": "file"}
    assert added == {"B": "file"}
