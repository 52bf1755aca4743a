"""Ledger headers to registry fields, ledger words to registry codes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gridgov.registry.ledger.columns import (
    PERSON_FIELDS,
    header_signature,
    parse_person_type,
    parse_relation,
    parse_room_use,
    parse_sex,
    parse_verification,
    split_tags,
    suggest_mapping,
)
from gridgov.registry.validators import FieldProblem

pytestmark = pytest.mark.usefixtures("english")

#: The headers of a real community ledger, in its order.
COMMUNITY_LEDGER = [
    "序号",
    "街道",
    "社区",
    "所属网格",
    "小区名称",
    "楼栋",
    "单元",
    "房号",
    "楼层",
    "房屋用途",
    "姓名",
    "性别",
    "出生日期",
    "公民身份号码",
    "联系电话",
    "民族",
    "人口类型",
    "与户主关系",
    "户号",
    "核实状态",
    "迁入日期",
    "人员标签",
    "备注",
]


def test_it_maps_every_column_of_a_community_ledger() -> None:
    mapping = suggest_mapping(COMMUNITY_LEDGER)
    assert mapping["序号"] is None
    assert [mapping[h] for h in COMMUNITY_LEDGER[1:]] == list(PERSON_FIELDS)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("身份证号", "id_number"),
        ("身份证号码", "id_number"),
        ("证件号码", "id_number"),
        ("身份证号码（必填）", "id_number"),
        ("* 姓名", "name"),
        ("手机号", "phone"),
        ("手机号码", "phone"),
        ("户籍类型", "person_type"),
        ("人员类型", "person_type"),
        ("小区", "estate"),
        ("楼号", "building"),
        ("幢", "building"),
        ("室", "room"),
        ("门牌号", "room"),
        ("房屋类型", "room_use"),
        ("网格编码", "grid_code"),
        ("标签", "tags"),
        ("出生年月", "birth_date"),
        ("居住地址/小区", "estate"),
        ("现居住小区", "estate"),
        ("本人联系电话（手机）", "phone"),
        ("Name", "name"),
        ("ID number", "id_number"),
        ("Date of birth", "birth_date"),
        ("Mobile", "phone"),
        ("Relationship", "relation"),
        ("Room No.", "room"),
    ],
)
def test_it_recognises_the_headers_ledgers_use(header: str, field: str) -> None:
    assert suggest_mapping([header]) == {header: field}


def test_it_does_not_take_someone_elses_data_for_the_persons_own() -> None:
    mapping = suggest_mapping(["户主姓名", "户主身份证号", "监护人电话", "身份证地址", "网格员"])
    assert set(mapping.values()) == {None}


def test_it_gives_each_field_to_one_column_only_preferring_an_exact_name() -> None:
    mapping = suggest_mapping(["本人手机号码（常用）", "联系电话", "联系电话 (2)"])
    assert mapping == {"本人手机号码（常用）": None, "联系电话": "phone", "联系电话 (2)": None}


def test_it_leaves_unknown_columns_unmapped() -> None:
    assert suggest_mapping(["文化程度", "列7"]) == {"文化程度": None, "列7": None}


def test_it_identifies_a_layout_by_its_header_names() -> None:
    signature = header_signature(["姓名", "身份证号", "联系电话"])
    assert len(signature) == 64
    assert int(signature, 16) >= 0
    assert header_signature([" 姓名 ", "身份证号", "联系 电话"]) == signature
    assert header_signature(["Name", "ID"]) == header_signature(["NAME", "id"])
    assert header_signature(["身份证号", "姓名", "联系电话"]) != signature
    assert header_signature(["姓名", "身份证号"]) != signature


@pytest.mark.parametrize(
    ("parse", "values", "code"),
    [
        (parse_sex, ["男", "男性", "M", "male", "1"], "male"),
        (parse_sex, ["女", "女性", "F", "Female", "2"], "female"),
        (parse_sex, ["未知", "不详", "0"], "unknown"),
        (parse_person_type, ["户籍", "户籍人口", "registered"], "registered"),
        (parse_person_type, ["流动人口", "流动", "外来人口", "暂住"], "floating"),
        (parse_person_type, ["境外人员", "外籍", "港澳台"], "overseas"),
        (parse_relation, ["户主", "本人", "本人（户主）"], "head"),
        (parse_relation, ["配偶", "妻", "夫", "妻子", "丈夫"], "spouse"),
        (parse_relation, ["子", "女", "儿子", "女儿", "长子"], "child"),
        (parse_relation, ["父亲", "母亲"], "parent"),
        (parse_relation, ["孙子", "孙女"], "grandchild"),
        (parse_relation, ["祖父母", "祖父", "外婆"], "grandparent"),
        (parse_relation, ["兄弟姐妹", "哥哥", "妹妹"], "sibling"),
        (parse_relation, ["儿媳", "女婿"], "child_in_law"),
        (parse_relation, ["租户", "租客"], "tenant"),
        (parse_relation, ["侄子", "其他亲属"], "other_relative"),
        (parse_relation, ["其他", "保姆"], "other"),
        (parse_room_use, ["自住", "自用"], "self_occupied"),
        (parse_room_use, ["出租", "rented"], "rented"),
        (parse_room_use, ["空置", "闲置"], "vacant"),
        (parse_room_use, ["经营", "商铺"], "business"),
        (parse_verification, ["已核实", "是"], "verified"),
        (parse_verification, ["未核实", "待核实", "否"], "unverified"),
        (parse_verification, ["存疑"], "doubtful"),
    ],
)
def test_it_turns_ledger_words_into_codes(
    parse: Callable[[str], str], values: list[str], code: str
) -> None:
    for value in values:
        assert parse(value) == code, value
        assert parse(f" {value} ") == code, value


@pytest.mark.parametrize(
    ("parse", "field"),
    [
        (parse_sex, "sex"),
        (parse_person_type, "person_type"),
        (parse_relation, "relation"),
        (parse_room_use, "room_use"),
        (parse_verification, "verification"),
    ],
)
def test_it_returns_nothing_for_a_blank_cell_and_a_problem_for_an_unknown_word(
    parse: Callable[[str], str], field: str
) -> None:
    assert parse("") == ""
    assert parse("  ") == ""
    with pytest.raises(FieldProblem) as caught:
        parse("火星人")
    assert (caught.value.field, caught.value.code) == (field, "choice")
    assert "火星人" in caught.value.message


def test_it_splits_a_tag_cell_without_blanks_or_repeats() -> None:
    assert split_tags("独居老人、低保，独居老人; 残疾人 ") == ["独居老人", "低保", "残疾人"]
    assert split_tags("") == []
