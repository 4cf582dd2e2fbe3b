"""Run the product: gunicorn (web) and a django-q2 cluster (worker and scheduler) together.

Both run as child processes; Ctrl-C or SIGTERM stops both, and if either dies the other is
stopped too, so the command never leaves half a product running.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from sumosources.env import env_int, env_str


class Command(BaseCommand):
    help = (
        "Start the web server (gunicorn, on PORT) and the django-q2 cluster; stop both on Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=env_str("SUMOSOURCES_BIND", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=env_int("PORT", 8000, minimum=1, maximum=65535)
        )
        parser.add_argument(
            "--web-workers", type=int, default=env_int("SUMOSOURCES_WEB_WORKERS", 2, minimum=1)
        )

    def handle(self, *args, host, port, web_workers, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        children = {
            "web": subprocess.Popen(
                [
                    python,
                    "-m",
                    "gunicorn",
                    "sumosources.wsgi:application",
                    "--bind",
                    f"{host}:{port}",
                    "--workers",
                    str(web_workers),
                    "--access-logfile",
                    "-",
                    "--graceful-timeout",
                    "5",
                ],
                cwd=settings.BASE_DIR,
            ),
            "worker": subprocess.Popen([python, manage, "qcluster"], cwd=settings.BASE_DIR),
        }
        self.stdout.write(
            f"Sumo Sources on http://{host}:{port}/ (web pid {children['web'].pid}, "
            f"cluster pid {children['worker'].pid}); Ctrl-C stops both."
        )
        self.stdout.flush()
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    self.stderr.write(f"{name} exited with status {proc.returncode}; stopping.")
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.5)
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.stdout.write("Stopped.")
        if exit_code:
            os._exit(exit_code)
