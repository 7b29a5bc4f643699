"""Plans and eSIM profile inventory."""

import csv
from collections.abc import Iterable
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models.esim import EsimProfile
from app.models.plan import Plan


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iccid_problem(iccid: str) -> str | None:
    """Why this ICCID is invalid, or None: 19 or 20 digits, starting 89, valid Luhn check digit."""
    if not iccid.isascii() or not iccid.isdigit():
        return "must contain digits only"
    if len(iccid) not in (19, 20):
        return "must be 19 or 20 digits long"
    if not iccid.startswith("89"):
        return "must start with 89"
    if not luhn_valid(iccid):
        return "has an invalid Luhn check digit"
    return None


def add_profiles(session: Session, plan_id: int, profiles: Iterable[tuple[str, str]]) -> int:
    """Add a batch of (iccid, activation_code) to a plan: all of it or, on any problem, none."""
    if session.get(Plan, plan_id) is None:
        raise NotFound(f"Plan {plan_id} does not exist")
    batch = list(profiles)
    if not batch:
        raise InvalidInput("profiles: the batch is empty")
    seen: set[str] = set()
    for index, (iccid, activation_code) in enumerate(batch):
        problem = iccid_problem(iccid)
        if problem:
            raise InvalidInput(f"profiles[{index}].iccid {iccid!r} {problem}")
        if not activation_code.strip():
            raise InvalidInput(f"profiles[{index}].activation_code is empty")
        if iccid in seen:
            raise Conflict(f"ICCID {iccid} appears twice in the batch; nothing was added")
        seen.add(iccid)
    known = session.scalars(select(EsimProfile.iccid).where(EsimProfile.iccid.in_(seen))).all()
    if known:
        raise Conflict(f"ICCID {sorted(known)[0]} is already in the inventory; nothing was added")
    try:
        with session.begin_nested():
            session.add_all(EsimProfile(plan_id=plan_id, iccid=i, activation_code=a.strip()) for i, a in batch)
            session.flush()
    except IntegrityError as exc:
        # A concurrent import added one of these ICCIDs between the check and the insert.
        raise Conflict("An ICCID of the batch is already in the inventory; nothing was added") from exc
    return len(batch)


def read_profiles_csv(stream: TextIO) -> list[tuple[str, str]]:
    """Rows of a CSV with `iccid` and `activation_code` columns."""
    reader = csv.DictReader(stream)
    missing = {"iccid", "activation_code"} - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput(f"CSV is missing the column(s): {', '.join(sorted(missing))}")
    return [((row["iccid"] or "").strip(), row["activation_code"] or "") for row in reader]


def create_plan(session: Session, **fields) -> Plan:
    plan = Plan(**fields)
    session.add(plan)
    session.flush()
    return plan
