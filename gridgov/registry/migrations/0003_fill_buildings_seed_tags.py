"""Existing buildings get their scope column and address key; the standard tag types."""

import unicodedata

from django.db import migrations

TAGS = [
    # code, Chinese, English, sensitivity
    ("elderly_alone", "独居老人", "Elderly living alone", 0),
    ("empty_nest", "空巢老人", "Empty-nest elderly", 0),
    ("disabled", "残疾人", "Person with disability", 0),
    ("low_income", "低保", "Minimum living allowance", 0),
    ("five_guarantees", "五保", "Five guarantees", 0),
    ("veteran", "退役军人", "Veteran", 0),
    ("single_parent", "单亲家庭", "Single-parent family", 0),
    ("left_behind_child", "留守儿童", "Left-behind child", 0),
    ("released_prisoner", "刑满释放人员", "Released prisoner", 1),
    ("community_correction", "社区矫正对象", "Under community correction", 1),
    ("severe_mental", "严重精神障碍患者", "Severe mental disorder", 1),
    ("drug_user", "吸毒人员", "Drug user", 1),
    ("petitioner", "重点信访人员", "Key petitioner", 1),
    ("at_risk_youth", "重点青少年", "At-risk youth", 1),
]


def normalise_address(text):
    # a copy of gridgov.registry.models.normalise_address as it was when this migration was made
    folded = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in folded if ch.isalnum())[:200]


def fill_buildings(apps, schema_editor):
    Building = apps.get_model("registry", "Building")
    batch = []
    for b in Building.objects.select_related("grid").iterator(chunk_size=2000):
        b.region_code = b.grid.code if b.grid_id else b.community_code
        b.address_key = normalise_address(b.address or f"{b.estate}{b.number}")
        batch.append(b)
        if len(batch) >= 2000:
            Building.objects.bulk_update(batch, ["region_code", "address_key"])
            batch = []
    if batch:
        Building.objects.bulk_update(batch, ["region_code", "address_key"])


def seed_tags(apps, schema_editor):
    TagType = apps.get_model("registry", "TagType")
    for order, (code, zh, en, sensitivity) in enumerate(TAGS, start=1):
        TagType.objects.get_or_create(
            code=code,
            defaults={
                "name_zh": zh,
                "name_en": en,
                "sensitivity": sensitivity,
                "applies_to": "person",
                "order": order * 10,
            },
        )


def unseed_tags(apps, schema_editor):
    TagType = apps.get_model("registry", "TagType")
    TagType.objects.filter(code__in=[t[0] for t in TAGS], person_tags__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_registry_records")]

    operations = [
        migrations.RunPython(fill_buildings, migrations.RunPython.noop),
        migrations.RunPython(seed_tags, unseed_tags),
    ]
