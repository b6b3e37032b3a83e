"""The page's first result: from choosing a 1-MP photo to its colour version on screen.

Starts `rechroma serve` (the shipped model) on a free loopback port in its own process,
opens the page in Debian's headless Chromium at a laptop's and a phone's size, and
uploads a grainy grayscale 1-MP JPEG `--runs` times per screen, each in a fresh page.
The page itself times each photo from the moment it takes the file to the moment the
editor has drawn its colour version (`data-done-ms` on the photo's card): upload,
colourising, download, decoding and drawing, all of it. Prints the median and the
worst per screen; the aim (issue #40) is a first result within 1 s.

    python benchmarks/bench_page.py --runs 7 --out docs/benchmarks
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from bench_server import DEFAULT_PHOTO_DIR, free_port, grainy_jpeg, start_server
from playwright.sync_api import expect, sync_playwright

SCREENS = {
    "laptop 1280x900": {"viewport": {"width": 1280, "height": 900}},
    "phone 390x844": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
    },
}
AIM_MS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="uploads per screen")
    parser.add_argument("--photo", type=Path, default=None)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=None, help="folder for page.json")
    parser.add_argument("serve_args", nargs="*", help="extra `rechroma serve` options")
    args = parser.parse_args()

    photo = args.photo or sorted(DEFAULT_PHOTO_DIR.glob("*.JPEG"))[0]
    upload = Path(tempfile.mkdtemp()) / "scan-1mp.jpg"
    upload.write_bytes(grainy_jpeg(photo, 1155, 866))
    port = free_port()
    server = start_server(port, args.serve_args)
    report = {"photo": "1155x866 grainy grayscale JPEG", "bytes": upload.stat().st_size}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox"]
            )
            for name, screen in SCREENS.items():
                times = []
                for _ in range(args.runs + 1):  # the first warms the server and the browser
                    context = browser.new_context(**screen)
                    page = context.new_page()
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.set_input_files("#files", str(upload))
                    card = page.locator("#results .card").first
                    expect(card.locator(".status")).to_have_text("Done", timeout=60_000)
                    times.append(int(card.get_attribute("data-done-ms")))
                    context.close()
                times = times[1:]
                median = statistics.median(times)
                report[name] = {"median_ms": median, "max_ms": max(times), "runs_ms": times}
                print(
                    f"{name}: first result in {median:.0f} ms (median of {len(times)}), "
                    f"worst {max(times)} ms; aim {AIM_MS} ms"
                )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "page.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
