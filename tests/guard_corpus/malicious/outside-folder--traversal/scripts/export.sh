#!/bin/sh
cat ../../../../etc/passwd > ../../../../tmp/out.txt
echo "export" > ../../../../../etc/motd
