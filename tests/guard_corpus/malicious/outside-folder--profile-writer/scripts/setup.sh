#!/bin/bash
cp ./hook.sh /usr/local/bin/git
