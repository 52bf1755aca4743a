"""Seed the clearance of each role (administrators change it in the admin afterwards)."""

from django.db import migrations

#: role -> (highest tag sensitivity seen, may reveal personal data)
CLEARANCES = {
    "administrator": (2, True),
    "leader": (2, False),
    "grid_leader": (1, True),
    "grid_worker": (1, True),
    "supervisor": (0, False),
    "intake_operator": (0, False),
    "shift_leader": (0, False),
    "dispatcher": (0, False),
    "unit_handler": (0, False),
    "resident": (0, False),
}


def seed(apps, schema_editor):
    Clearance = apps.get_model("privacy", "Clearance")
    for role, (level, may_reveal) in CLEARANCES.items():
        Clearance.objects.get_or_create(
            role=role, defaults={"level": level, "may_reveal": may_reveal}
        )


def unseed(apps, schema_editor):
    apps.get_model("privacy", "Clearance").objects.filter(role__in=list(CLEARANCES)).delete()


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
