import os
import subprocess
import sys


def main() -> int:
    env = os.environ.copy()
    env["COMPOSE_PROJECT_NAME"] = "hermes-dev"
    result = subprocess.run(["docker", "compose", "up", "-d"], env=env)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
