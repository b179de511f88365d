import argparse
import subprocess
import sys

parser = argparse.ArgumentParser(description="Build and upload the package")
parser.add_argument("--repository", default="pypi",
                    help="upload the wheel to this repository using the token in ~/.pypirc")
args = parser.parse_args()
subprocess.run([sys.executable, "-m", "build"], check=True)
subprocess.run([sys.executable, "-m", "twine", "upload", "--repository", args.repository, "dist/*"], check=True)
