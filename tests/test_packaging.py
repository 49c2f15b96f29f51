"""What the production wheel carries: the product's packages, and not the Alipay sandbox (a test and demo tool)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = {"engine", "campaigns", "games", "rewards", "alipay_platform", "web", "migrations"}


def test_the_wheel_holds_the_product_and_not_the_sandbox(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(ROOT), "-w", str(tmp_path)],
                   check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("huodong-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert tops >= PRODUCT
    assert "alipay_sandbox" not in tops and "tests" not in tops and "bench" not in tops
    assert "web/pages/static/admin.js" in zipfile.ZipFile(wheel).namelist()  # package data still ships
