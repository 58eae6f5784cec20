from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _refresh_roles(sender, using: str = "default", **kwargs) -> None:
    """After every migrate (and every test flush): the roles exist and hold the permissions of every model."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    from accounts.roles import apply_roles

    # Permissions are created app by app as post_migrate goes round; make sure all exist before the roles read them.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    apply_roles(Group, Permission)


class AccountsConfig(AppConfig):
    """Operators' accounts: roles (groups) and two-factor sign-in to the admin."""

    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        post_migrate.connect(_refresh_roles, sender=self, dispatch_uid="accounts.refresh_roles")
