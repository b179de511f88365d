import sys
import xml.etree.ElementTree as ET

rate = float(ET.parse("coverage.xml").getroot().get("line-rate"))
print(f"line coverage {rate:.1%}")
sys.exit(0 if rate >= float(sys.argv[1]) else 1)
