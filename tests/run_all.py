"""`make test`: the whole suite on SQLite, then on MariaDB/MySQL and PostgreSQL when
TEST_MYSQL_URL / TEST_POSTGRES_URL are set. Says which databases ran and which were skipped."""

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

BACKENDS = [
    ("sqlite", None),
    ("mysql", "TEST_MYSQL_URL"),
    ("postgresql", "TEST_POSTGRES_URL"),
]


def main() -> int:
    extra = sys.argv[1:]
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    lines = []
    failed_any = False
    for name, variable in BACKENDS:
        url = os.environ.get(variable) if variable else "sqlite"
        if not url:
            lines.append(f"{name}: SKIPPED ({variable} is not set)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "junit.xml"
            env = {**os.environ, "TEST_DATABASE": name}
            if variable:
                env["TEST_DATABASE_URL"] = url
            print(f"\n===== test suite on {name} =====", flush=True)
            code = subprocess.call([sys.executable, "-m", "pytest", f"--junitxml={report}", *extra], env=env)
            counts = _counts(report)
        for key in totals:
            totals[key] += counts[key]
        ok = code == 0
        failed_any |= not ok
        lines.append(
            f"{name}: {'OK' if ok else f'FAILED (exit {code})'} — "
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
    print("\n===== databases =====")
    print("\n".join(lines))
    print(f"total: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 1 if failed_any else 0


def _counts(report: Path) -> dict[str, int]:
    if not report.exists():
        return {"passed": 0, "failed": 1, "skipped": 0}
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = failures = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return {"passed": tests - failures - skipped, "failed": failures, "skipped": skipped}


if __name__ == "__main__":
    sys.exit(main())
