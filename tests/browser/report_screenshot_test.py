"""The HTML report as a person sees it: sae train writes one, headless Chromium renders it to a
PNG, and the picture is checked the way a reader would look at it: the page is all there (nothing
past the bottom or the right edge), it has a title, text and tables, every run's colour is drawn,
the confusion table's diagonal is shaded and the latent scatter has its dots.

usage: report_screenshot_test.py SAE CHROMIUM WORK_DIR
The screenshot stays in WORK_DIR/report.png for a person to look at.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 1000, 9000


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def pixels_near(image, hex_colour, tolerance=10):
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int((np.abs(image - rgb).max(axis=2) <= tolerance).sum())


def main():
    sae, chromium, work = sys.argv[1], sys.argv[2], sys.argv[3]
    if shutil.which(chromium) is None:
        sys.exit(f"{chromium}: not found; scripts/ensure-deps.sh installs Debian's chromium")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    report, shot = (os.path.join(work, name) for name in ("report.html", "report.png"))
    # The data sits under a long directory name, as in a deep build tree: the command line in the
    # report's facts is then a long word with no space to break at.
    deep = os.path.join(work, "a_directory_name_as_long_as_those_of_a_build_tree_nested_deeply" * 3)
    os.makedirs(deep)
    data = os.path.join(deep, "data.mtx")
    run([sae, "gen", "--rows", "1500", "--seed", "3", "-o", data, "--quiet"])
    run([sae, "train", "--data", data, "--loss", "hurdle", "--epochs", "2", "--hidden", "32",
         "--latent", "8", "--backend", "cpu", "-o", "", "--quiet", "--report", report],
        env=dict(os.environ, OMP_WAIT_POLICY="passive"))
    # Root in a container has no sandbox to drop into; the page loads nothing from outside.
    run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={os.path.join(work, 'profile')}",
         f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", "file://" + os.path.abspath(report)])

    image = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    failures = []

    def check(condition, what):
        if not condition:
            failures.append(what)

    check(image.shape == (HEIGHT, WIDTH, 3), f"screenshot of {image.shape}, not {HEIGHT}x{WIDTH}")
    inked = (image < 250).any(axis=2)  # anything but the white page
    rows_inked = np.flatnonzero(inked.any(axis=1))
    check(rows_inked.size > 0, "the page is blank")
    if rows_inked.size > 0:
        bottom = rows_inked[-1]
        check(bottom < HEIGHT - 200, f"the page runs to the bottom of the {HEIGHT} px window")
        check(bottom > 2500, f"the page ends at {bottom} px: sections are missing")
        check(inked[:80].any(), "no title at the top")
    check(not inked[:, WIDTH - 8:].any(), "something reaches the right edge at 1000 px wide")
    dark = (image < 90).all(axis=2).sum()
    check(dark > 20000, f"{dark} dark pixels: too little text")
    for name, colour, least in [("the model's lines (#1f77b4)", "#1f77b4", 800),
                                ("pca's lines (#d62728)", "#d62728", 400),
                                ("the tables' headers (#f0f0f0)", "#f0f0f0", 5000),
                                ("the confusion tables' shaded diagonal (#e6f0e6)", "#e6f0e6", 2000),
                                ("the charts' grid lines (#e0e0e0)", "#e0e0e0", 3000)]:
        found = pixels_near(image, colour, 6)
        check(found >= least, f"{found} pixels of {name}, fewer than {least}")
    # The scatter's dots run from light yellow to dark purple (viridis' ends) at 0.8 opacity:
    # saturated pixels where blue is far below red and green (yellow) or red and green far below
    # blue (purple), colours no chart line or table uses.
    yellowish = ((image[:, :, 0] > 180) & (image[:, :, 1] > 160) & (image[:, :, 2] < 110)).sum()
    purplish = ((image[:, :, 2] > image[:, :, 1] + 60) & (image[:, :, 0] > image[:, :, 1] + 20)).sum()
    check(yellowish + purplish >= 300, f"{yellowish + purplish} pixels of scatter dots")
    if failures:
        sys.exit(f"the report {report} as rendered in {shot}:\n  " + "\n  ".join(failures))
    print(f"report rendered: {shot}, content to {rows_inked[-1]} px")


if __name__ == "__main__":
    main()
