from sqlalchemy import text
from app.db import build_engine
from app.models.funnel import FunnelGapRollup, FunnelRollup
engine = build_engine("sqlite:///var/bench/bench_1m.db")
with engine.begin() as c:
    for m in (FunnelRollup, FunnelGapRollup):
        t = m.__tablename__
        c.execute(text(f"ALTER TABLE {t} RENAME TO old_{t}"))
        for ix in c.execute(text(f"SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='old_{t}' AND sql IS NOT NULL")).scalars().all():
            c.execute(text(f"DROP INDEX {ix}"))
        m.__table__.create(c)
        cols = ", ".join(col.name for col in m.__table__.c)
        c.execute(text(f"INSERT INTO {t} ({cols}) SELECT {cols} FROM old_{t}"))
        c.execute(text(f"DROP TABLE old_{t}"))
    c.execute(text("ANALYZE"))
