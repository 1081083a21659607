"""Wall time of every example script against its one-minute CPU budget.

Run: ``python benchmarks/examples.py``. Each example runs in a fresh interpreter, one at a time,
and the table shows its time and the ratio to the 60 s budget (< 1 meets it).
"""

import subprocess
import sys
import time
from pathlib import Path

from skloop.experiments._report import markdown_table

BUDGET_SECONDS = 60.0


def main():
    rows = []
    for path in sorted((Path(__file__).parent.parent / "examples").glob("*.py")):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        status = "ok" if result.returncode == 0 else f"failed ({result.returncode})"
        rows.append([path.name, f"{elapsed:.1f}", f"{elapsed / BUDGET_SECONDS:.2f}", status])
    print(markdown_table(["example", "seconds", "ratio to budget", "status"], rows))


if __name__ == "__main__":
    main()
