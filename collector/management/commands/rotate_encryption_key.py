"""Re-encrypt every stored secret under a new key (MultiFernet rotation)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from collector import crypto
from collector.models import Source


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored client secret under a new key, keeping the old keys for decryption. "
        "With the key file (the embedded default) a new key is generated and put first in the file. "
        "With SUMOSOURCES_ENCRYPTION_KEYS, put the new key first in the variable (generate one with "
        "--generate), restart, then run this: secrets are re-encrypted under the first key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--new-key", help="With the key file: use this Fernet key.")
        parser.add_argument("--generate", action="store_true", help="Only print a new key.")
        parser.add_argument(
            "--drop-old",
            action="store_true",
            help="After re-encrypting, remove the old keys from the key file.",
        )

    def handle(self, *args, new_key=None, drop_old=False, generate=False, **options):
        if generate:
            self.stdout.write(crypto.generate_key())
            return
        old_keys = crypto.configured_keys()
        if settings.ENCRYPTION_KEYS:
            # The process can only use keys it was started with, so the new key must already be
            # first in the variable; rotating to a key the workers do not have would lock them out.
            if new_key and new_key != old_keys[0]:
                raise CommandError(
                    "Put the new key first in SUMOSOURCES_ENCRYPTION_KEYS, then rerun."
                )
            new_key = old_keys[0]
        new_key = new_key or crypto.generate_key()
        keys = [new_key, *[k for k in old_keys if k != new_key]]
        try:
            crypto.rotate_token(crypto.encrypt("probe"), keys)
        except Exception:
            raise CommandError("The new key is not a valid Fernet key.") from None
        failed = []
        count = 0
        with transaction.atomic():
            for source in Source.objects.exclude(secret_encrypted="").only(
                "pk", "name", "secret_encrypted"
            ):
                try:
                    token = crypto.rotate_token(source.secret_encrypted, keys)
                except crypto.DecryptionError:
                    failed.append(source)
                    continue
                Source.objects.filter(pk=source.pk).update(secret_encrypted=token)
                count += 1
            if failed and drop_old:
                raise CommandError(
                    "Some secrets cannot be decrypted with any key, so the old keys are kept: "
                    + ", ".join(f"{s.name} (id {s.pk})" for s in failed)
                )
            if settings.ENCRYPTION_KEYS:
                if drop_old:
                    self.stdout.write(
                        "All secrets use the first key; older keys may now be removed."
                    )
            else:
                crypto.write_key_file(crypto.key_file(), [new_key] if drop_old else keys)
        for source in failed:
            self.stderr.write(f"cannot decrypt the secret of source {source.name} (id {source.pk})")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secret(s) under the new key."))
