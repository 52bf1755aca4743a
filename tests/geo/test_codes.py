"""Region codes: levels by length, legacy grid codes, parents and ancestors."""

from __future__ import annotations

import pytest

from gridgov.geo.codes import (
    CodeError,
    ancestor_codes,
    child_level,
    grid_code,
    level_of,
    normalise_code,
    parent_code,
)


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("320113", "district"),
        ("320113005", "street"),
        ("320113005001", "community"),
        ("320113005001003", "grid"),
    ],
)
def test_the_level_of_a_code_follows_its_length(code: str, level: str) -> None:
    assert level_of(code) == level
    assert normalise_code(code) == code


def test_a_legacy_14_digit_grid_code_becomes_15_digits_with_a_zero_before_the_sequence() -> None:
    assert normalise_code("32011300500103") == "320113005001003"
    assert normalise_code(" 32011300500112 ") == "320113005001012"


def test_a_code_given_as_a_whole_number_is_read_as_text() -> None:
    assert normalise_code(320113) == "320113"


def test_a_code_with_a_fraction_is_refused(english: None) -> None:
    with pytest.raises(CodeError, match="fraction"):
        normalise_code(320113.0)


@pytest.mark.parametrize("raw", ["3201", "32011300", "3201130050010031", "abc123", "", None])
def test_a_code_of_the_wrong_length_or_with_letters_is_refused_with_a_reason(raw: object) -> None:
    with pytest.raises(CodeError):
        normalise_code(raw)


def test_expect_level_names_both_levels(english: None) -> None:
    with pytest.raises(CodeError, match="street code, expected a community code"):
        normalise_code("320113005", expect_level="community")


def test_parents_and_ancestors_are_code_prefixes() -> None:
    assert parent_code("320113005001003") == "320113005001"
    assert parent_code("320113") is None
    assert ancestor_codes("320113005001003") == ["320113", "320113005", "320113005001"]
    assert child_level("community") == "grid"
    assert child_level("grid") is None


def test_grid_codes_have_a_three_digit_sequence_from_1_to_999() -> None:
    assert grid_code("320113005001", 7) == "320113005001007"
    with pytest.raises(CodeError):
        grid_code("320113005001", 1000)
    with pytest.raises(CodeError):
        grid_code("320113005001", 0)
