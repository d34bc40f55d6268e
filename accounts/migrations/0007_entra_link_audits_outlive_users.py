"""The Entra link audit outlives the user: ``entra_link_audits.user_id`` loses its foreign key.

Deleting a user used to cascade to its audit rows. The column, its values and
its index stay; the constraint goes, so the rows keep the id of a deleted user,
and the column becomes nullable, so that Django joins it with an outer join.
On PostgreSQL that is ``DROP CONSTRAINT`` and ``DROP NOT NULL``: neither
rewrites or scans the table, and each waits for its lock at most
``MIGRATION_LOCK_TIMEOUT_MS``.

Reversing it adds the cascading foreign key back (``NOT VALID``, then
validated): that fails while audit rows of deleted users remain.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_entra_sign_in_records"),
    ]

    operations = [
        migrations.AlterField(
            model_name="entralinkaudit",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="entra_link_audits",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
    ]
