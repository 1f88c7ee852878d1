"""Reports as files people download: one rendering shared by the CLI and the dashboard, so a CSV
from either is the same bytes."""

import csv
import io

from router.reports.compliance import Matrix

COMPLIANCE_COLUMNS = ("lesson", "team", "cell", "reason", "placements", "waiver", "why")


def compliance_csv(matrix: Matrix) -> str:
    """The matrix as CSV: one row per lesson × team cell, placements space-separated."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COMPLIANCE_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for cell in matrix.cells.values():
        row = cell.as_dict()
        row["placements"] = " ".join(row["placements"])
        writer.writerow(row)
    return out.getvalue()
