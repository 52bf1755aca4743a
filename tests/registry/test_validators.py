"""The field validators: id numbers, credit codes, phones, component codes and dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridgov.registry.validators import (
    CREDIT_ALPHABET,
    PROVINCES,
    FieldProblem,
    IdNumberFacts,
    check_component_code,
    check_credit_code,
    check_id_consistent,
    check_id_number,
    check_mobile,
    check_phone,
    credit_check_char,
    excel_serial,
    id_check_char,
    org_check_char,
    parse_date,
)

pytestmark = pytest.mark.usefixtures("english")

TODAY = date(2026, 11, 23)


def problem(call: Callable[..., object], *args: object, **kwargs: object) -> FieldProblem:
    with pytest.raises(FieldProblem) as caught:
        call(*args, **kwargs)
    return caught.value


# --------------------------------------------------------------------------- id numbers


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, date, str]:
    province = draw(st.sampled_from(sorted(PROVINCES)))
    rest = draw(st.from_regex(r"\A[0-9]{4}\Z"))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
    order = draw(st.integers(min_value=0, max_value=999))
    first17 = f"{province}{rest}{born:%Y%m%d}{order:03d}"
    sex = "male" if order % 2 else "female"
    return first17 + id_check_char(first17), born, sex


@given(id_numbers())
def test_it_accepts_generated_id_numbers_and_reads_birth_date_sex_and_region(
    case: tuple[str, date, str],
) -> None:
    number, born, sex = case
    facts = check_id_number(number, today=TODAY)
    assert facts == IdNumberFacts(birth_date=born, sex=sex, region6=number[:6])


@given(id_numbers(), st.integers(min_value=0, max_value=17), st.sampled_from("0123456789X"))
def test_it_refuses_an_id_number_with_any_single_character_changed(
    case: tuple[str, date, str], position: int, replacement: str
) -> None:
    number = case[0]
    if number[position] == replacement:
        replacement = "X" if replacement != "X" else "0"
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(FieldProblem):
        check_id_number(changed, today=TODAY)


def test_it_names_the_check_character_it_expected() -> None:
    wrong = problem(check_id_number, "110105194912310021", today=TODAY)
    assert (wrong.field, wrong.code) == ("id_number", "check")
    assert wrong.message == "The check character of the id number is wrong (expected X)."


def test_it_reads_the_well_known_example_number() -> None:
    facts = check_id_number("11010519491231002X", today=TODAY)
    assert facts.birth_date == date(1949, 12, 31)
    assert facts.sex == "female"
    assert facts.region6 == "110105"


def test_it_accepts_a_lower_case_x_and_spaces_as_people_type_them() -> None:
    assert check_id_number(" 110105 19491231 002x ", today=TODAY).sex == "female"
    assert check_id_number("１１０１０５１９４９１２３１００２Ｘ", today=TODAY).region6 == "110105"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("110105491231002", "legacy"),
        ("11010519491231002", "length"),
        ("1.10105194912310E+17", "scientific"),
        ("11010519491231002Y", "characters"),
        ("1101051949123100AX", "characters"),
        ("00010519491231002X", "region"),
        ("110105194902300020", "birth_date"),
        ("110105187901010010", "birth_date"),
        ("110105202712310010", "birth_date"),
    ],
)
def test_it_names_what_is_wrong_with_an_id_number(value: str, code: str) -> None:
    assert problem(check_id_number, value, today=TODAY).code == code


def test_it_explains_an_old_15_digit_number() -> None:
    message = problem(check_id_number, "110105491231002").message
    assert "15-digit" in message


def test_it_reports_a_birth_date_and_a_sex_that_disagree_with_the_id_number() -> None:
    facts = check_id_number("11010519491231002X", today=TODAY)
    check_id_consistent(facts, date(1949, 12, 31), "female")
    check_id_consistent(facts, None, "unknown")
    born = problem(check_id_consistent, facts, date(1949, 12, 30), None)
    assert (born.field, born.code) == ("birth_date", "id_mismatch")
    assert "1949-12-31" in born.message
    sex = problem(check_id_consistent, facts, None, "male")
    assert (sex.field, sex.code) == ("sex", "id_mismatch")
    assert sex.message == "The sex does not match the id number, which says female."


# --------------------------------------------------------------------------- credit codes

REAL_CREDIT_CODES = [
    "9144030071526726XG",
    "91330100716105852F",
    "914403001922038216",
    "91110108551385082Q",
    "91110108MA01G0FB09",  # letters in the organisation code
]


@pytest.mark.parametrize("code", REAL_CREDIT_CODES)
def test_it_accepts_real_credit_codes(code: str) -> None:
    assert check_credit_code(code) == code
    assert check_credit_code(" " + code.lower() + " ") == code


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from("159Y")) + draw(st.sampled_from("123"))
    region = draw(st.from_regex(r"\A[0-9]{6}\Z"))
    body = "".join(draw(st.lists(st.sampled_from(CREDIT_ALPHABET), min_size=8, max_size=8)))
    first17 = head + region + body + org_check_char(body)
    return first17 + credit_check_char(first17)


@given(credit_codes())
def test_it_accepts_generated_credit_codes(code: str) -> None:
    assert check_credit_code(code) == code


@given(credit_codes(), st.integers(min_value=0, max_value=17), st.sampled_from(CREDIT_ALPHABET))
def test_it_refuses_a_credit_code_with_any_single_character_changed(
    code: str, position: int, replacement: str
) -> None:
    if code[position] == replacement:
        replacement = CREDIT_ALPHABET[(CREDIT_ALPHABET.index(replacement) + 1) % 31]
    with pytest.raises(FieldProblem):
        check_credit_code(code[:position] + replacement + code[position + 1 :])


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("9144030071526726X", "length"),
        ("9144030071526726IG", "characters"),
        ("0144030071526726XG", "kind"),
        ("9044030071526726XG", "kind"),
        ("91440A0071526726XG", "region"),
        ("91440300715267260G", "org_check"),
        ("9144030071526726XH", "check"),
    ],
)
def test_it_names_what_is_wrong_with_a_credit_code(value: str, code: str) -> None:
    assert problem(check_credit_code, value).code == code


def test_it_names_the_expected_check_character_of_a_credit_code() -> None:
    wrong = problem(check_credit_code, "9144030071526726XH")
    assert wrong.message == "The check character of the credit code is wrong (expected G)."
    inner = problem(check_credit_code, "91440300715267260G")
    assert "(expected X)" in inner.message


# --------------------------------------------------------------------------- phones


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "008613812345678",
        "8613812345678",
        "１３８１２３４５６７８",
    ],
)
def test_it_accepts_a_mobile_number_however_it_is_written(value: str) -> None:
    assert check_mobile(value) == "13812345678"
    assert check_phone(value) == "13812345678"


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("025-85551234", "02585551234"),
        ("(0755) 8888 1234", "075588881234"),
        ("010-6555123", "0106555123"),
        ("400-812-3123", "4008123123"),
    ],
)
def test_it_accepts_a_landline_with_its_area_code_as_a_phone(value: str, digits: str) -> None:
    assert check_phone(value) == digits
    assert problem(check_mobile, value).code == "mobile"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("1381234567", "mobile"),
        ("12812345678", "mobile"),
        ("85551234", "area_code"),
        ("025-8555", "phone"),
    ],
)
def test_it_names_what_is_wrong_with_a_phone(value: str, code: str) -> None:
    assert problem(check_phone, value).code == code


# --------------------------------------------------------------------------- component codes


def test_it_accepts_legacy_and_new_component_codes_with_their_category() -> None:
    assert check_component_code("3205820102048188", "0102") == "3205820102048188"
    assert check_component_code("32058201002048188", "01002") == "32058201002048188"
    assert check_component_code("3205820102048188") == "3205820102048188"


@pytest.mark.parametrize(
    ("value", "category", "code"),
    [
        ("", None, "required"),
        ("320582010204818", None, "format"),
        ("32058201020481A8", None, "format"),
        ("0005820102048188", None, "district"),
        ("3200000102048188", None, "district"),
        ("3205820113048188", "0102", "category"),
        ("3205820102048188", "01002", "category"),
        ("3205820102000000", "0102", "sequence"),
    ],
)
def test_it_names_what_is_wrong_with_a_component_code(
    value: str, category: str | None, code: str
) -> None:
    assert problem(check_component_code, value, category).code == code


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-23",
        "2026/11/23",
        "2026.11.23",
        "20261123",
        "2026年11月23日",
        "2026年11月23号",
        " 2026 - 11 - 23 ",
        "2026-11-23 08:30:00",
        "２０２６年１１月２３日",
        "46349",
        "46349.75",
        46349,
        46349.75,
        date(2026, 11, 23),
        datetime(2026, 11, 23, 8, 30),
    ],
)
def test_it_reads_the_ways_a_ledger_writes_a_date(value: object) -> None:
    assert parse_date(value) == date(2026, 11, 23)


def test_it_reads_single_digit_months_and_days() -> None:
    assert parse_date("2026-1-5") == date(2026, 1, 5)
    assert parse_date("2026年1月5日") == date(2026, 1, 5)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "required"),
        ("2026-02-30", "impossible"),
        ("2026年13月1日", "impossible"),
        ("20260230", "impossible"),
        (60, "impossible"),
        (0, "impossible"),
        ("1990", "format"),
        ("199005", "format"),
        ("23/11/2026", "format"),
        ("tomorrow", "format"),
        (True, "format"),
    ],
)
def test_it_names_what_is_wrong_with_a_date(value: object, code: str) -> None:
    assert problem(parse_date, value, field="birth_date").code == code


def test_it_says_which_date_does_not_exist() -> None:
    wrong = problem(parse_date, "2026-02-30", field="moved_in_on")
    assert wrong.field == "moved_in_on"
    assert wrong.message == "There is no such date: 2026-02-30."


@given(st.dates(min_value=date(1900, 3, 1), max_value=date(2199, 12, 31)))
def test_it_reads_back_every_date_in_every_form(day: date) -> None:
    forms = [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}.{day.month:02d}.{day.day:02d}",
        f"{day:%Y%m%d}",
        f"{day.year}年{day.month}月{day.day}日",
        excel_serial(day),
        float(excel_serial(day)) + 0.5,
    ]
    for form in forms:
        assert parse_date(form) == day, form


def test_it_counts_excel_serials_as_excel_does() -> None:
    assert parse_date(1) == date(1900, 1, 1)
    assert parse_date(59) == date(1900, 2, 28)
    assert parse_date(61) == date(1900, 3, 1)
    assert excel_serial(date(2026, 11, 23)) == 46349
