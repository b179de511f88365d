"""Convert office documents to PDF with a headless LibreOffice."""
import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def convert(source: Path, outdir: Path) -> Path:
    profile = tempfile.mkdtemp(prefix="lo-profile-")
    env = os.environ.copy()
    env["HOME"] = profile
    try:
        subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{profile}",
                        "--convert-to", "pdf", "--outdir", str(outdir), str(source)],
                       check=True, env=env, timeout=180)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return outdir / (source.stem + ".pdf")


def main() -> None:
    parser = argparse.ArgumentParser(description="Convert an office document to PDF.")
    parser.add_argument("input", help="the .docx/.xlsx/.pptx file; never uploaded anywhere, converted locally")
    parser.add_argument("--outdir", default=".", help="where to write the PDF")
    args = parser.parse_args()
    print(convert(Path(args.input), Path(args.outdir)))


if __name__ == "__main__":
    main()
