"""Shared test fixtures: locations of the shared real-data extracts and the report text."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

# Numba compiles every model the suite fits, and on a cold machine compiling is most of
# the suite's time.  LLVM's optimisation level 1 instead of 3 cuts a model's compile by
# about a fifth (24.9 to 19.7 s for a binomial study model) and sampled no slower
# (2026-12-03).  Set before anything imports Numba; subprocesses inherit it, and the
# compile cache keeps such entries apart (compile_cache.versions_tag).
os.environ.setdefault("NUMBA_OPT", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBDID_SHARED", REPO.parent / "shared"))
SHARED_DATA = SHARED / "data"
REPORT_TEXT = SHARED / "seeds" / "everybody-needs-good-neighbourhoods-2-report.txt"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real public-data extracts; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data (real public-data extracts) is not available")
    return SHARED_DATA


@pytest.fixture(scope="session")
def report_text() -> str:
    """The report's text; skips the test when ../shared/seeds is absent."""
    if not REPORT_TEXT.is_file():
        pytest.skip("../shared/seeds report text is not available")
    return REPORT_TEXT.read_text(encoding="utf-8")
