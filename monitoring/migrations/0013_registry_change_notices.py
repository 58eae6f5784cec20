"""PostgreSQL announces every committed change to what the API lists or checks (monitoring.api.registry_changes).

Statement-level triggers send one notice per statement on channel `aistatus_registry`: the ids of the
models whose status or region rows changed, or `*` for anything else (models, providers,
credentials, API tokens, users, their groups and permissions). PostgreSQL delivers notices at commit,
folds identical ones of a transaction into one, and never delivers those of a rolled-back one.
"""

from django.db import migrations

EVERYTHING = ("monitoring_aimodel", "monitoring_provider", "monitoring_credential", "authtoken_token")
EVERYTHING += ("auth_user", "auth_user_groups", "auth_user_user_permissions", "auth_group_permissions")
PER_MODEL = ("monitoring_modelstatus", "monitoring_regionstatus")

FUNCTIONS = """
CREATE OR REPLACE FUNCTION aistatus_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aistatus_registry', '*');
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION aistatus_model_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    SELECT string_agg(DISTINCT model_id::text, ',') INTO ids FROM changed_rows;
    IF ids IS NOT NULL THEN
        -- A notice holds at most 8,000 bytes: a larger change stands for everything.
        PERFORM pg_notify('aistatus_registry', CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END $$;

-- An update names the models a row belonged to before and after it.
CREATE OR REPLACE FUNCTION aistatus_model_rows_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    SELECT string_agg(DISTINCT model_id::text, ',') INTO ids
    FROM (SELECT model_id FROM changed_rows UNION ALL SELECT model_id FROM old_rows) AS touched;
    IF ids IS NOT NULL THEN
        PERFORM pg_notify('aistatus_registry', CASE WHEN length(ids) > 7000 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END $$;
"""


def _statements() -> list[str]:
    out = [FUNCTIONS]
    for table in EVERYTHING:
        out.append(
            f"CREATE TRIGGER aistatus_registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION aistatus_registry_changed()"
        )
    for table in PER_MODEL:
        # A trigger with transition tables takes one event each.
        for event, rows, function in (
            ("INSERT", "NEW TABLE AS changed_rows", "aistatus_model_rows_changed"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS changed_rows", "aistatus_model_rows_updated"),
            ("DELETE", "OLD TABLE AS changed_rows", "aistatus_model_rows_changed"),
        ):
            out.append(
                f"CREATE TRIGGER aistatus_rows_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
        out.append(
            f"CREATE TRIGGER aistatus_registry_changed AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION aistatus_registry_changed()"
        )
    return out


def _drops() -> list[str]:
    out = [f"DROP TRIGGER IF EXISTS aistatus_registry_changed ON {table}" for table in EVERYTHING + PER_MODEL]
    out += [
        f"DROP TRIGGER IF EXISTS aistatus_rows_{event} ON {table}"
        for table in PER_MODEL
        for event in ("insert", "update", "delete")
    ]
    return [
        *out,
        "DROP FUNCTION IF EXISTS aistatus_registry_changed()",
        "DROP FUNCTION IF EXISTS aistatus_model_rows_changed()",
    ]


def forwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # without notices the API's cached reads stay off (registry_changes never listens)
    for statement in _statements():
        schema_editor.execute(statement)


def backwards(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in _drops():
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0012_aimodel_slo_objectives"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
