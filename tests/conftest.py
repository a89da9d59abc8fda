"""Shared test fixtures. The repository root is put on sys.path so `models`, `datasets`, `utils` import."""
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def shared_dir():
    """The ../shared reference data (golden files, official labels); skip when absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is not present beside the repository")
    return SHARED_DIR
