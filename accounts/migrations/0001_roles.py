"""The roles viewer, operator and admin as groups with their permissions; existing staff users become admins."""

from django.conf import settings
from django.db import migrations


def create_roles(apps, schema_editor) -> None:
    from django.contrib.auth.management import create_permissions

    from accounts.roles import ADMIN, apply_roles

    # Permissions are created after migrations run (post_migrate): create them now, so the roles hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    apply_roles(Group, Permission)
    # Upgrades keep working: everyone who held every right as staff keeps them as an admin.
    User = apps.get_model(settings.AUTH_USER_MODEL)
    Group.objects.get(name=ADMIN).user_set.add(*User.objects.filter(is_staff=True))


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        ("django_otp_webauthn", "0004_webauthnuserhandle"),
        ("monitoring", "0011_modelstatus_set_by"),
        ("collectors", "0002_agents"),
        ("alerts", "0003_notification_kind_anomaly"),
        ("subscriptions", "0001_initial"),
        ("audit", "0001_audit_entry"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
