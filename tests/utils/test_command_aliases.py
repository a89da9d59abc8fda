"""The commands of earlier releases (`python -m utils.<tool>`) still run the tools that moved out of utils/."""
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOVED = {"pose_extraction": "extract.py", "visualize": "visualize.py", "bleurt": "bleurt.py",
         "collect_results": "collect_results.py", "export_checkpoint": "export_checkpoint.py"}


@pytest.mark.parametrize("old_name", sorted(MOVED))
def test_the_old_command_runs_the_moved_tool(old_name):
    result = subprocess.run([sys.executable, "-m", f"utils.{old_name}", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-1000:]
    assert result.stdout.startswith(f"usage: {MOVED[old_name]}")
