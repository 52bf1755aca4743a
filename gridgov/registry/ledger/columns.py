"""From a ledger's headers to the registry's fields, and from its words to the registry's codes.

- ``suggest_mapping(headers)`` proposes a target field for each header (or ``None``): the
  headers real community ledgers use (姓名, 公民身份号码, 联系电话, 小区名称, 楼栋, 房号 …) and
  their English counterparts. A header is normalised first (NFKC, lower case, no spaces or
  punctuation, no note in brackets: "身份证号码（必填）" is "身份证号码"); a joined two-row
  header "居住地址/小区" is tried whole and then part by part from the right. Each field is
  given to one header at most: the first exact match wins, then a header that merely contains
  a synonym ("现居住小区") gets a field still free, unless it names someone else's data
  ("户主姓名", "监护人电话").
- ``header_signature(headers)`` identifies a ledger layout (a template) by its normalised
  header names, so that a mapping confirmed once is offered again.
- ``parse_sex``, ``parse_person_type``, ``parse_relation``, ``parse_room_use`` and
  ``parse_verification`` turn a cell into a code, return ``""`` for an empty cell, and raise
  ``FieldProblem`` for a word they do not know. ``split_tags`` splits a tag cell.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from django.utils.translation import gettext_lazy

from gridgov.registry.validators import FieldProblem

#: The person ledger's target fields, in the order a mapping screen lists them.
PERSON_FIELDS: tuple[str, ...] = (
    "street",
    "community",
    "grid_code",
    "estate",
    "building",
    "unit",
    "room",
    "floor",
    "room_use",
    "name",
    "sex",
    "birth_date",
    "id_number",
    "phone",
    "ethnicity",
    "person_type",
    "relation",
    "household_number",
    "verification",
    "moved_in_on",
    "tags",
    "note",
)

#: Joins the rows of a multi-row header ("居住地址/小区"); see ``ledger.readers``.
HEADER_JOINER = "/"

_SYNONYMS: dict[str, str] = {
    "street": (
        "街道|所属街道|街道名称|街道办事处|乡镇|乡镇街道|镇街|所属乡镇|street|subdistrict|"
        "street office|town"
    ),
    "community": (
        "社区|所属社区|社区名称|社区村|村社区|村居|居委会|村委会|社区居委会|所属村居|"
        "community|village|neighbourhood|neighborhood"
    ),
    "grid_code": (
        "网格|所属网格|网格编码|网格编号|网格代码|网格号|网格名称|grid|grid code|grid no|"
        "grid number"
    ),
    "estate": (
        "小区|小区名称|所在小区|所属小区|小区自然村|自然村|院落|楼盘|estate|residential estate|"
        "compound|housing estate"
    ),
    "building": (
        "楼栋|楼号|幢|幢号|栋|栋号|楼栋号|楼幢|楼幢号|楼栋名称|楼宇|building|building no|"
        "building number|bldg"
    ),
    "unit": "单元|单元号|unit|unit no|entrance",
    "room": (
        "房号|室|室号|房间号|门牌号|户室号|房屋号|门牌|房屋编号|room|room no|room number|"
        "door number|apartment|flat"
    ),
    "floor": "楼层|层|所在楼层|所在层|floor|storey|story|level",
    "room_use": (
        "房屋用途|房屋类型|房屋性质|房屋使用情况|房屋状态|使用情况|用途|房屋使用性质|"
        "room use|use|housing use|occupancy"
    ),
    "name": "姓名|人员姓名|居民姓名|名字|姓名名称|name|full name|person name|resident name",
    "sex": "性别|sex|gender",
    "birth_date": (
        "出生日期|出生年月|出生年月日|生日|出生时间|birth date|date of birth|dob|birthday|born"
    ),
    "id_number": (
        "公民身份号码|身份证号|身份证号码|身份证|证件号码|证件号|身份证件号码|"
        "居民身份证号码|公民身份证号码|身份号码|证件号码身份证|"
        "id number|id no|id card|id card number|identity number|identity card number|"
        "resident id|id"
    ),
    "phone": (
        "联系电话|电话|手机号|手机号码|手机|联系方式|电话号码|移动电话|本人电话|"
        "本人联系电话|联系手机|"
        "phone|mobile|telephone|tel|contact phone|phone number|mobile number|cell phone"
    ),
    "ethnicity": "民族|ethnicity|ethnic group|nation",
    "person_type": (
        "人员类型|人口类型|户籍类型|人员类别|人口类别|人口属性|人员属性|居住类型|户籍性质|"
        "person type|resident type|population type|registration type"
    ),
    "relation": (
        "与户主关系|与户主的关系|与户主关系名称|家庭关系|户内关系|关系|relation|relationship|"
        "relation to head|relationship to head"
    ),
    "household_number": "户号|户编号|家庭户号|户编码|household number|household no|household",
    "verification": (
        "核实状态|核查状态|核实情况|是否核实|核实结果|核查情况|verification|verified|"
        "verification status"
    ),
    "moved_in_on": (
        "迁入日期|迁入时间|入住日期|入住时间|居住起始日期|来本地日期|来本地时间|"
        "现住址迁入日期|moved in|moved in on|move in date|moved in date|arrival date"
    ),
    "tags": "标签|人员标签|特殊人群|人群类别|重点人群|关爱对象|人员标识|tags|tag|labels",
    "note": "备注|说明|备注说明|其他说明|note|notes|remark|remarks|comment|comments",
}

#: Headers that are known and deliberately mapped to nothing (row numbers, totals).
_IGNORED = frozenset({"序号", "编号", "no", "nr", "number", "#", "行号", "seq", "sn"})

#: A header starting with one of these is about someone else (the head of the household, a
#: guardian, a contact): never a fuzzy match for the person's own field.
_OTHER_PERSON = (
    *("户主", "房主", "产权人", "业主", "监护人", "联系人", "紧急联系人", "法定代表人"),
    *("法人", "父亲", "母亲", "配偶", "房东", "出租人", "网格员", "网格长", "楼长"),
    *("单元长", "社区民警", "民警", "工作单位", "单位"),
)
#: A header containing one of these is a place or an address, never a fuzzy match (an id
#: card's address "身份证地址" is not the id number, "户籍地" is not the person type).
_NOT_FUZZY = ("地址", "住址", "籍贯", "出生地", "户籍地", "所在地")

_BRACKETS = re.compile(r"[(\[{<【〔][^)\]}>】〕]*[)\]}>】〕]")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_header(text: str) -> str:
    """The comparable form of a header: NFKC, lower case, no bracketed note, no punctuation."""
    value = unicodedata.normalize("NFKC", text or "").lower()
    value = _BRACKETS.sub("", value)
    return _NOT_WORD.sub("", value)


def _build_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for field, words in _SYNONYMS.items():
        for word in words.split("|"):
            key = normalise_header(word)
            if index.setdefault(key, field) != field:  # pragma: no cover - table mistake
                raise ValueError(f"synonym {word!r} maps to two fields")
    return index


SYNONYM_INDEX: dict[str, str] = _build_index()
# Fuzzy containment only for words of 2 characters or more, longest first.
_FUZZY = sorted((k for k in SYNONYM_INDEX if len(k) >= 2), key=len, reverse=True)


def _parts(header: str) -> list[str]:
    """The header whole, then each part of a joined header from the right."""
    pieces = [p for p in header.split(HEADER_JOINER) if p.strip()]
    candidates = [header, *reversed(pieces)] if len(pieces) > 1 else [header]
    return [n for n in (normalise_header(c) for c in candidates) if n]


def _exact(header: str) -> str | None:
    for key in _parts(header):
        if key in SYNONYM_INDEX:
            return SYNONYM_INDEX[key]
    return None


def _fuzzy(header: str) -> str | None:
    for key in _parts(header):
        if key in _IGNORED or key.startswith(_OTHER_PERSON) or any(w in key for w in _NOT_FUZZY):
            continue
        for word in _FUZZY:
            # Short Latin words ("id", "tel") only as whole words, never inside another word.
            if word.isascii() and len(word) <= 4:
                continue
            if word in key:
                return SYNONYM_INDEX[word]
    return None


def suggest_mapping(headers: Sequence[str]) -> dict[str, str | None]:
    """A proposed target field (or ``None``) for each header, each field used at most once."""
    result: dict[str, str | None] = dict.fromkeys(headers)
    used: set[str] = set()
    for header in headers:
        field = _exact(header)
        if field and field not in used and result[header] is None:
            result[header] = field
            used.add(field)
    for header in headers:
        if result[header] is not None:
            continue
        field = _fuzzy(header)
        if field and field not in used:
            result[header] = field
            used.add(field)
    return result


def header_signature(headers: Iterable[str]) -> str:
    """sha256 (hex) of the normalised header names in order: the identity of a layout."""
    text = "\n".join(normalise_header(h) for h in headers)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- values


def _key(value: str) -> str:
    return normalise_header(value)


def _choice(value: str, table: dict[str, str], field: str) -> str:
    text = (value or "").strip()
    if not text:
        return ""
    code = table.get(_key(text))
    if code is None:
        raise FieldProblem(field, "choice", str(_UNKNOWN[field]) % {"value": text})
    return code


def _table(entries: dict[str, str]) -> dict[str, str]:
    """{code: "word|word|…"} → {normalised word: code}; the code itself is a word too."""
    table: dict[str, str] = {}
    for code, words in entries.items():
        for word in (code, *words.split("|")):
            table[_key(word)] = code
    return table


_SEX = _table(
    {
        "male": "男|男性|男士|m|man|1",
        "female": "女|女性|女士|f|woman|2",
        "unknown": "未知|不详|未说明|未知的性别|0|9|u|x",
    }
)

_PERSON_TYPE = _table(
    {
        "registered": (
            "户籍|户籍人口|户籍人员|本地户籍|常住户籍|常住户籍人口|本地人口|本地|户籍居民|local|"
            "registered resident"
        ),
        "floating": (
            "流动|流动人口|流动人员|外来人口|外来人员|暂住|暂住人口|外来|寄住|非户籍|非户籍人口|migrant|"
            "floating population|non-local"
        ),
        "overseas": (
            "境外|境外人员|境外人口|外籍|外籍人员|外国人|港澳台|港澳台人员|境外人士|foreign|foreigner|"
            "overseas resident"
        ),
    }
)

_RELATION = _table(
    {
        "head": "户主|本人|户主本人|本人户主|self|householder|head of household",
        "spouse": "配偶|妻|夫|妻子|丈夫|爱人|老婆|老公|wife|husband",
        "child": (
            "子|女|儿子|女儿|长子|次子|三子|长女|次女|三女|养子|养女|继子|继女|独生子|独生女|子女|儿女|son|"
            "daughter"
        ),
        "parent": "父亲|母亲|父|母|父母|公公|婆婆|岳父|岳母|继父|继母|养父|养母|father|mother",
        "grandchild": (
            "孙子|孙女|外孙|外孙子|外孙女|孙|孙辈|曾孙|曾孙子|曾孙女|孙子女|grandson|granddaughter"
        ),
        "grandparent": (
            "祖父|祖母|外祖父|外祖母|爷爷|奶奶|外公|外婆|祖父母|外祖父母|grandfather|grandmother"
        ),
        "sibling": "兄|弟|姐|妹|哥哥|弟弟|姐姐|妹妹|兄弟|姐妹|兄弟姐妹|brother|sister",
        "child_in_law": "儿媳|儿媳妇|女婿|子婿|son-in-law|daughter-in-law|child in law",
        "other_relative": (
            "其他亲属|亲属|亲戚|侄子|侄女|外甥|外甥女|叔叔|伯父|伯母|叔父|婶婶|舅舅|舅妈|姑姑|姑父|阿姨|姨父|嫂子|弟媳|"
            "姐夫|妹夫|孙媳|孙媳妇|孙女婿|relative|other relative"
        ),
        "tenant": "租户|租客|承租人|租住|房客|租住人员|renter|lodger",
        "other": "其他|其它|非亲属|保姆|朋友|同事|借住|non-relative|friend",
    }
)

_ROOM_USE = _table(
    {
        "self_occupied": (
            "自住|自用|自有自住|自居|居住|自住房|业主自住|self-occupied|self occupied|"
            "owner-occupied|owner occupied"
        ),
        "rented": "出租|租赁|出租房|出租屋|已出租|出租自住|rental|rent|let",
        "vacant": "空置|闲置|空房|空闲|空置房|无人居住|empty",
        "business": "经营|商用|营业|门面|商铺|店铺|经营性|生产经营|经营用房|commercial|shop",
    }
)

_VERIFICATION = _table(
    {
        "verified": "已核实|核实|是|已核查|已确认|已核|正常|yes|y|checked",
        "unverified": "未核实|待核实|否|未核查|待核查|未确认|no|n|not verified|unchecked",
        "doubtful": "存疑|疑问|有疑问|可疑|信息有误|有误|doubt|questionable",
    }
)


_UNKNOWN = {
    "sex": gettext_lazy("“%(value)s” is not a known sex (write 男 or 女)."),
    "person_type": gettext_lazy(
        "“%(value)s” is not a known person type (registered, floating or overseas)."
    ),
    "relation": gettext_lazy("“%(value)s” is not a known relation to the head of the household."),
    "room_use": gettext_lazy(
        "“%(value)s” is not a known room use (self-occupied, rented, vacant or business)."
    ),
    "verification": gettext_lazy(
        "“%(value)s” is not a known verification status (verified, unverified or doubtful)."
    ),
}


def parse_sex(value: str) -> str:
    """male / female / unknown from 男, 女, M, F, male … (GB/T 2261.1 codes 1, 2, 0, 9 too)."""
    return _choice(value, _SEX, "sex")


def parse_person_type(value: str) -> str:
    """registered / floating / overseas from 户籍人口, 流动人口, 境外人员 …"""
    return _choice(value, _PERSON_TYPE, "person_type")


def parse_relation(value: str) -> str:
    """The relation to the head of the household from 户主, 配偶, 儿子, 租户 …"""
    return _choice(value, _RELATION, "relation")


def parse_room_use(value: str) -> str:
    """self_occupied / rented / vacant / business from 自住, 出租, 空置, 经营 …"""
    return _choice(value, _ROOM_USE, "room_use")


def parse_verification(value: str) -> str:
    """verified / unverified / doubtful from 已核实, 未核实, 存疑 …"""
    return _choice(value, _VERIFICATION, "verification")


_TAG_SEPARATORS = re.compile(r"[,，、;；/|\s]+")


def split_tags(value: str) -> list[str]:
    """The tags written in one cell ("独居老人、低保"), without blanks or repeats."""
    seen: dict[str, None] = {}
    for part in _TAG_SEPARATORS.split(unicodedata.normalize("NFKC", value or "")):
        if part:
            seen.setdefault(part, None)
    return list(seen)
