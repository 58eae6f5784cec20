"""Removes a user's two-factor devices (authenticator and recovery codes): they enroll again at their next sign-in."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp import devices_for_user

from monitoring.acting import acting_as, command_operator


class Command(BaseCommand):
    help = "Remove a user's two-factor devices; with REQUIRE_2FA on they set up a new one at their next sign-in."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args, username: str, **options) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
        # The audit trail records each removal under the command's operator.
        with acting_as(name=command_operator()):
            devices = list(devices_for_user(user, confirmed=None))
            for device in devices:
                device.delete()
        self.stdout.write(f"{username}: {len(devices)} two-factor device(s) removed.")
