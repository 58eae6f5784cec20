"""Schemathesis over /api/schema/ against the real server, with a staff token and without: no 500, none off-schema."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import user_with_role

# Each run is bounded in time; `FUZZ_SECONDS=300 pytest tests/test_api_fuzz.py` runs longer (see README).
FUZZ_SECONDS = int(os.environ.get("FUZZ_SECONDS", "10"))
ST = Path(sys.executable).with_name("st")
# Left out: the endless SSE stream, and alert channels and subscriptions: they send to the URLs and
# addresses they are given (a webhook's challenge, a test message, a confirmation mail), so on a machine
# with a network the fuzzer would reach whatever hosts it invents (they pass here, where none is reachable).
EXCLUDED = ["--exclude-path", "/api/v1/events/", "--exclude-path", "/api/v1/subscriptions/"]
EXCLUDED += ["--exclude-path-regex", "^/api/v1/alert-channels/"]


@pytest.fixture
def served(transactional_db, tmp_path, django_user_model, request):
    from rest_framework.authtoken.models import Token

    from demo.registry import seed_demo
    from tests.servers import serve

    seed_demo()
    staff = user_with_role("fuzz", "admin")
    token = Token.objects.create(user=staff).key
    env = getattr(request, "param", {})  # the suite turns throttles off; a test may turn them on
    with serve(tmp_path / "uvicorn.log", **env) as base:
        yield base, token, tmp_path / "uvicorn.log"


def fuzz(base: str, workdir: Path, *headers: str) -> subprocess.CompletedProcess:
    command = [str(ST), "run", f"{base}/api/schema/", "--url", base, "--max-time", str(FUZZ_SECONDS)]
    # One worker: generating cases parses lambdas' source with ast, which two threads at once can break
    # on Python 3.11 ("AST constructor recursion depth mismatch"), failing the run for no fault of the API.
    command += ["--checks", "not_a_server_error,response_schema_conformance", "--workers", "1", *EXCLUDED]
    # Hypothesis's complaints about its own generation (too many candidates discarded, examples too slow
    # to make on a busy machine) say nothing of the API; the checks above still judge every request sent.
    command += ["--suppress-health-check", "filter_too_much,too_slow"]
    for header in headers:
        command += ["-H", header]
    # In a temporary folder: schemathesis keeps a cache where it runs.
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=FUZZ_SECONDS * 4 + 60)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "staff token"])
def test_no_input_gets_a_server_error_or_an_answer_off_the_schema(served, signed_in):
    base, token, log = served
    result = fuzz(base, log.parent, *([f"Authorization: Token {token}"] if signed_in else []))
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report + "\n--- server log ---\n" + log.read_text()[-4000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout.lower(), report


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("served", [{"API_THROTTLE_TOKEN": "30/min"}], indirect=True, ids=["throttled"])
def test_throttled_clients_get_429s_that_keep_to_the_schema(served):
    import urllib.error
    import urllib.request

    base, token, log = served
    result = fuzz(base, log.parent, f"Authorization: Token {token}")
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report + "\n--- server log ---\n" + log.read_text()[-4000:]
    # The run went over the rate: the API answers 429 now, with Retry-After.
    request = urllib.request.Request(f"{base}/api/v1/incidents/", headers={"Authorization": f"Token {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 429 and int(refused.value.headers["Retry-After"]) > 0
