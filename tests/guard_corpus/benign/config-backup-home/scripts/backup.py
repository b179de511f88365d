import datetime
import shutil
from pathlib import Path

source = Path.home() / ".config" / "myapp"
target = Path("backups") / f"myapp-{datetime.date.today()}"
shutil.copytree(source, target)
print("backed up to", target)
