"""The whole path with real processes: uvicorn, a Celery worker with beat, manage.py, and an SMTP server.

Settings come from the environment as an operator gives them: EMAIL_HOST and EMAIL_PORT point the
product at the local SMTP capture.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

import pytest

from monitoring.models import AIModel, Incident, Provider
from subscriptions.models import Subscriber
from tests.servers import ROOT, server_env
from tests.smtp import Capture, SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def confirm_path(message) -> str:
    text = message.get_body(preferencelist=("plain",)).get_content()
    return urlsplit(re.search(r"(http://\S+/subscriptions/confirm/\S+/)", text).group(1)).path


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def test_sign_up_confirm_outage_one_click_unsubscribe_with_real_processes(asgi_server, tmp_path, settings):
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    b = Provider.objects.create(name="Google", slug="google")
    # Enabled (a disabled model's automatic incident is resolved at once), but never probed: the worker
    # below serves only the "celery" queue, not the probing queues.
    AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    AIModel.objects.create(provider=b, name="Gemini", slug="gemini", endpoint="http://127.0.0.1:9/v1")
    capture = Capture()
    smtp = SMTPServer(capture)
    smtp.start()
    mail_env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port), "DEFAULT_FROM_EMAIL": "status@status.example"}
    env = server_env(CELERY_BROKER_URL=settings.REDIS_URL, ALERTS_WAKE_ON_CHANGE="1", **mail_env)
    worker = None
    try:
        url = asgi_server(**mail_env)
        # The worker's subscriptions round (every second) sends the confirmations and the notices.
        command = [sys.executable, "-m", "celery", "-A", "aistatus", "worker", "-B", "-Q", "celery"]
        command += ["--pool", "threads", "--concurrency", "4", "--loglevel", "WARNING"]
        command += ["-s", str(tmp_path / "beat-schedule")]
        log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)

        def sign_up(body: dict) -> None:
            before = len(capture.messages)
            assert post(url + "/api/v1/subscriptions/", json.dumps(body).encode(), "application/json") == 202
            wait_until(lambda: len(capture.messages) == before + 1, 30, "a confirmation mail")
            with urllib.request.urlopen(url + confirm_path(capture.messages[-1]), timeout=10) as page:
                assert page.status == 200

        def to(address: str) -> list:
            return capture.to(address)

        sign_up({"email": "ann@example.com", "models": ["anthropic/claude"], "language": "en"})
        sign_up({"email": "bob@example.com", "providers": ["google"]})
        # Carol follows the whole page: she shows that the recovery is announced at all.
        sign_up({"email": "carol@example.com"})
        assert Subscriber.objects.filter(confirmed_at__isnull=False).count() == 3

        manage(env, "set_status", "anthropic/claude", "major_outage", "--reason", "HTTP 503")
        wait_until(lambda: len(to("ann@example.com")) == 2 and len(to("carol@example.com")) == 2, 60, "incident mails")
        time.sleep(3)  # whatever else would come, a duplicate or a mail to Bob, comes within rounds
        assert Incident.objects.get().state == Incident.State.INVESTIGATING
        assert (len(to("ann@example.com")), len(to("bob@example.com"))) == (2, 1)
        outage = to("ann@example.com")[1]
        assert "Investigating" in outage["Subject"]
        assert outage["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = urlsplit(outage["List-Unsubscribe"].strip().strip("<>")).path
        assert post(url + unsubscribe, b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded") == 200
        assert not Subscriber.objects.filter(email="ann@example.com").exists()

        manage(env, "set_status", "anthropic/claude", "operational", "--reason", "fixed")
        wait_until(lambda: len(to("carol@example.com")) == 3, 60, "the recovery mail to the page's follower")
        time.sleep(3)
        assert "Monitoring" in to("carol@example.com")[2]["Subject"]
        assert (len(to("ann@example.com")), len(to("bob@example.com"))) == (2, 1)
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        smtp.stop()
