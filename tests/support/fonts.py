"""Arabic PDFs need DejaVu Sans (Debian's fonts-dejavu-core): the test setup installs it when missing
and the tests run as root with apt-get, as it does chromium for the browser scenarios."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from portnet.documents.layout import unicode_font_dir


def require_arabic_font() -> None:
    try:
        unicode_font_dir()
        return
    except RuntimeError as missing:
        problem = str(missing)
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "fonts-dejavu-core"],
        ):
            subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        try:
            unicode_font_dir()
            return
        except RuntimeError as still:
            problem = str(still)
    pytest.fail(problem)
