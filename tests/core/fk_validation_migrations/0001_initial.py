from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Parent",
            fields=[("id", models.BigAutoField(primary_key=True, serialize=False))],
            options={"db_table": "fkv_parent"},
        ),
        migrations.CreateModel(
            name="Child",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("parent", models.BigIntegerField(db_column="parent_id")),
                ("note", models.TextField(db_default="")),
            ],
            options={"db_table": "fkv_child"},
        ),
    ]
