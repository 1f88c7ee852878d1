"""`cairn demo --keep-serving` leaves the dashboard up with the demo's data, prints its URL and
sign-in tokens, and stops cleanly on Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_keep_serving_leaves_a_dashboard_one_can_sign_in_to(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CAIRN_DATABASE_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from router.cli import main; main()",
            "demo",
            "--dir",
            str(tmp_path),
            "--keep-serving",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "[dashboard]" in line:
                break
        text = "".join(lines)
        assert "all steps behaved as expected" in text, text
        url = re.search(r"(http://127\.0\.0\.1:\d+)/ui/", text)
        reviewer = re.search(r"reviewer: (cairn_\S+)", text)
        assert url is not None and reviewer is not None, text
        with httpx.Client(base_url=url.group(1), timeout=10) as browser:
            form = browser.get("/ui/sign-in")
            nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert nonce is not None
            signed = browser.post(
                "/ui/sign-in",
                data={"csrf": nonce.group(1), "token": reviewer.group(1), "next": "/ui/compliance"},
            )
            assert signed.status_code == 303
            page = browser.get("/ui/compliance")
            assert page.status_code == 200
            # The demo made its captured lesson required: the matrix has a row for it.
            assert "from-pagerduty-" in page.text
            assert "token:dashboard-reviewer" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0
