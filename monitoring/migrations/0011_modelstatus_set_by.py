"""Who set a manual status (ModelStatus.set_by), for the admin and the audit trail.

SQLite adds a column by rebuilding the table, which its trigger on monitoring_aimodel (0002) would
block ("no such table" while the table is renamed): the trigger is dropped around the rebuild there.
"""

from django.db import migrations, models

SQLITE_DROP_TRIGGER = "DROP TRIGGER IF EXISTS monitoring_aimodel_status_row;"
# The same trigger as 0002_status_row_trigger installs.
SQLITE_CREATE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS monitoring_aimodel_status_row AFTER INSERT ON monitoring_aimodel
BEGIN
    INSERT OR IGNORE INTO monitoring_modelstatus (model_id) VALUES (NEW.id);
END;
"""


def _on_sqlite(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0010_aimodel_anomaly_degrades"),
    ]

    operations = [
        migrations.RunPython(_on_sqlite(SQLITE_DROP_TRIGGER), _on_sqlite(SQLITE_CREATE_TRIGGER)),
        migrations.AddField(
            model_name="modelstatus",
            name="set_by",
            field=models.CharField(blank=True, db_default="", default="", max_length=150, verbose_name="set by"),
        ),
        migrations.RunPython(_on_sqlite(SQLITE_CREATE_TRIGGER), _on_sqlite(SQLITE_DROP_TRIGGER)),
    ]
