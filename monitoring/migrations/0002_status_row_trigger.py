"""Every model gets its status row from the database itself, on every creation path.

Python-level hooks miss some paths (bulk_create skips save(); historical models in data
migrations skip signals and custom managers; raw SQL skips Django), so an AFTER INSERT trigger
creates the `unknown` row in the same transaction as the model. The same migration adds the rows
an existing database lacks.
"""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION monitoring_create_status_row() RETURNS trigger AS $$
BEGIN
    INSERT INTO monitoring_modelstatus (model_id) VALUES (NEW.id) ON CONFLICT (model_id) DO NOTHING;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS monitoring_aimodel_status_row ON monitoring_aimodel;
CREATE TRIGGER monitoring_aimodel_status_row AFTER INSERT ON monitoring_aimodel
    FOR EACH ROW EXECUTE FUNCTION monitoring_create_status_row();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS monitoring_aimodel_status_row ON monitoring_aimodel;
DROP FUNCTION IF EXISTS monitoring_create_status_row();
"""
SQLITE_UP = """
CREATE TRIGGER IF NOT EXISTS monitoring_aimodel_status_row AFTER INSERT ON monitoring_aimodel
BEGIN
    INSERT OR IGNORE INTO monitoring_modelstatus (model_id) VALUES (NEW.id);
END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS monitoring_aimodel_status_row;"

BACKFILL = """
INSERT INTO monitoring_modelstatus (model_id)
SELECT m.id FROM monitoring_aimodel m
WHERE NOT EXISTS (SELECT 1 FROM monitoring_modelstatus s WHERE s.model_id = m.id)
"""


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)
    else:
        raise RuntimeError(f"{vendor} is not supported; use PostgreSQL or SQLite")
    schema_editor.execute(BACKFILL)


def uninstall(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(POSTGRES_DOWN if vendor == "postgresql" else SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
