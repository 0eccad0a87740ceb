"""Study names are plain file names: none escapes studies/, reports/ or the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_cli_refused, assert_refused, spec

from dse.errors import InputError
from dse.search import check_study_name
from dse.search.spec import parse_spec

BAD = [
    "../evil",
    "..",
    "a..b",
    "a/b",
    "/etc/passwd",
    "a\\b",
    "",
    "-dash",
    ".hidden",
    "x" * 65,
    "tab\tname",
    "new\nline",
    "name\n",
    "é",
    "a b",
    "nul\x00",
]
GOOD = ["quickstart", "a", "A.b_c-1", "x" * 64, "1.0"]


@pytest.mark.parametrize("name", BAD, ids=repr)
def test_a_spec_with_an_unsafe_name_is_refused(name: str) -> None:
    text = spec(name)
    assert_refused(
        lambda: parse_spec(text, where="s.toml"), field="name", words=["not a plain name"]
    )


@pytest.mark.parametrize("name", BAD + [3, None], ids=repr)
def test_check_name_refuses(name: object) -> None:
    with pytest.raises(InputError, match="not a plain name") as info:
        check_study_name(name, where="w")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", GOOD)
def test_check_name_accepts(name: str) -> None:
    assert check_study_name(name, where="w") == name
    assert parse_spec(spec(name), where="s.toml").name == name


@pytest.mark.parametrize(
    "argv",
    [
        ["study", "status", "../../outside"],
        ["study", "resume", "../outside"],
        ["front", "a..b"],
        ["verify", "/tmp/x"],
        ["report", "../../outside"],
        ["export", "../x", "--trial", "0", "--out", "bundle"],
    ],
)
def test_cli_refuses_an_unsafe_name_in_one_line(
    argv: list[str], study_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_cli_refused(argv, capsys, words=["not a plain name"])
    assert not any(study_folder.iterdir()), "nothing may be written for a refused name"
