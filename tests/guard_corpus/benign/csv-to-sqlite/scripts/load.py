import csv
import sqlite3
import sys
from pathlib import Path

source = Path(sys.argv[1])
db = sqlite3.connect(source.with_suffix(".db"))
with source.open(newline="") as handle:
    reader = csv.reader(handle)
    header = next(reader)
    columns = ", ".join(f'"{c}"' for c in header)
    db.execute(f"CREATE TABLE IF NOT EXISTS data ({columns})")
    db.executemany(f"INSERT INTO data VALUES ({', '.join('?' * len(header))})", reader)
db.commit()
