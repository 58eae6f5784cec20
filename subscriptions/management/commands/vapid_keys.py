"""Make a VAPID key pair for Web Push and print the settings to put in the environment."""

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management.base import BaseCommand
from py_vapid import b64urlencode


class Command(BaseCommand):
    help = "Print a new VAPID_PRIVATE_KEY (and its public key) for Web Push subscriptions."

    def handle(self, *args, **options) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        private = b64urlencode(key.private_numbers().private_value.to_bytes(32, "big"))
        public = b64urlencode(
            key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        )
        self.stdout.write(f"VAPID_PRIVATE_KEY={private}\n")
        self.stdout.write(f"# public key (browsers subscribe with it; derived from the private key): {public}\n")
