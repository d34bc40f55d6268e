"""The column becomes a foreign key: ``ADD CONSTRAINT … NOT VALID``, then ``VALIDATE CONSTRAINT``."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [
        migrations.AlterField(
            "child",
            "parent",
            models.ForeignKey("core.parent", on_delete=models.DO_NOTHING, db_column="parent_id", db_index=False),
        ),
    ]
