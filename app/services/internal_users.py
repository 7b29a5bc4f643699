"""Who is internal: admins (ADMIN_EMAILS, users.is_admin) and ANALYTICS_EXCLUDE_EMAILS (`*@domain` allowed).

Read from the users table on every report, never stored in the derived tables, so a
grant-admin, a changed setting or a new matching signup is reflected at once.
"""

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models.user import User


def internal_user_ids(session: Session, settings: Settings) -> set[int]:
    """Ids of the users that exclude_internal=true leaves out."""
    patterns = settings.analytics_exclude_patterns
    exact = settings.admin_email_set | {p for p in patterns if not p.startswith("*@")}
    domains = [p[1:] for p in patterns if p.startswith("*@")]
    conditions = [User.is_admin.is_(True)]
    if exact:
        conditions.append(User.email.in_(sorted(exact)))
    for domain in domains:
        escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(User.email.like(f"%{escaped}", escape="\\"))
    return set(session.scalars(select(User.id).where(or_(*conditions))))
