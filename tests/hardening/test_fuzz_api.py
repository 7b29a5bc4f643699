"""Schemathesis against the app's own OpenAPI schema, in process, on real commits.

Every operation is fuzzed with an admin's token: no 5xx, status codes and bodies as the
schema declares, and the `ignored_auth` check replays each authenticated success without
credentials and with made-up ones, which must be refused (401/403).
"""

import json
import secrets

import hypothesis
import pytest
import schemathesis
from sqlalchemy.orm import Session

from schemathesis.core import NotSet

from app.config import get_settings
from app.db import utc_now
from app.main import app
from app.models.user import AuthSession, User
from app.services.auth import token_hash
from tests.helpers import auth, sign

schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.generation.update(max_examples=25)
# A body past the size limit is refused before it is read (413), whatever it holds.
for check in (schema.config.checks.positive_data_acceptance, schema.config.checks.negative_data_rejection):
    check.expected_statuses = [*check.expected_statuses, "413"]

# Operations whose valid-looking input is still checked beyond what JSON Schema can say;
# for them a 4xx on schema-valid data is the right answer, not a finding.
SEMANTIC_CHECKS = {
    "/auth/request-code": "JSON Schema's email format admits addresses like shop@localhost that no mail domain has (422)",
    "/auth/verify-code": "a well-formed code is still the wrong one 999,999 times in a million (400)",
    "/admin/plans/{plan_id}/esim-profiles": "an ICCID needs a valid Luhn check digit (422)",
    "/payments/webhook": "without a valid Stripe-Signature nothing is accepted (400)",
    "/admin/analytics/overview": "dates must be real calendar days within 1970..2999, start before end (422)",
    "/admin/analytics/timeseries": "dates must be real calendar days within 1970..2999, start before end (422)",
    "/admin/analytics/projections": "as_of must be a real calendar day within 1970..2999 (422)",
    "/admin/analytics/funnel": "dates must be real calendar days within 1970..2999, start before end; tz an IANA zone (422)",
    "/admin/analytics/retention": "dates must be real calendar days within 1970..2999, start before end; tz an IANA zone (422)",
}

RESPONSE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

FUZZ_SETTINGS = hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)


@pytest.fixture(scope="module", autouse=True)
def private_mailbox(live_shop, tmp_path_factory):
    """The fuzzer's login emails (e.g. to the schema's example u1@shop.test) go to a folder of their own,
    so tests that count the messages an address received are not disturbed."""
    settings = get_settings()
    shared = settings.email_file_dir
    settings.email_file_dir = str(tmp_path_factory.mktemp("fuzz-mail"))
    yield
    settings.email_file_dir = shared


@pytest.fixture(scope="module")
def shop(live_shop):
    return live_shop[1]


def throwaway_token(engine) -> str:
    """A fresh session for a new user, so fuzzing /auth/logout never ends the admin's session."""
    token = secrets.token_urlsafe(32)
    now = utc_now()
    with Session(engine) as session, session.begin():
        user = User(email=f"logout-{secrets.token_hex(6)}@shop.test", is_admin=False, created_at=now)
        session.add(user)
        session.flush()
        session.add(AuthSession(user_id=user.id, token_hash=token_hash(token), created_at=now, expires_at=now.replace(year=now.year + 1)))
    return token


@schema.parametrize()
@FUZZ_SETTINGS
def test_every_operation_as_admin(case, shop, engine):
    token = throwaway_token(engine) if case.path == "/auth/logout" else shop.admin_token
    excluded = [schemathesis.checks.positive_data_acceptance] if case.path in SEMANTIC_CHECKS else []
    case.call_and_validate(headers=auth(token), excluded_checks=excluded)


@schema.include(path="/payments/webhook").parametrize()
@FUZZ_SETTINGS
def test_signed_webhook_bodies(case, live_shop):
    """Correctly signed but arbitrary event bodies: never a 5xx, always a declared answer."""
    client, _ = live_shop
    body = case.body
    payload = b"" if isinstance(body, NotSet) else body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        "/payments/webhook", content=payload, headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload)}
    )
    # Only the answer's own checks: the request is ours (signed), not the generated one.
    case.validate_response(response, checks=RESPONSE_CHECKS)
