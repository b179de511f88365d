#!/bin/sh
set -eu
rm -rf ./tmp ./out ./.cache/build
rm -f ./*.log
mkdir -p ./tmp
echo "cleaned" > /tmp/clean-done
