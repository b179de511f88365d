import os
import sys
from pathlib import Path

required = [line.split("=", 1)[0] for line in Path(".env.example").read_text().splitlines()
            if line and not line.startswith("#")]
missing = [name for name in required if not os.environ.get(name)]
if missing:
    print("missing:", ", ".join(missing))
    sys.exit(1)
print("all", len(required), "variables set")
