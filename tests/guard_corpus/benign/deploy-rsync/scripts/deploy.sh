#!/usr/bin/env bash
set -euo pipefail
TARGET="${1:?usage: deploy.sh ENV}"
HOST="web-${TARGET}.internal.example.com"
TEMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TEMP_DIR"' EXIT
npm run build -- --outDir "$TEMP_DIR/dist"
rsync -az --delete -e "ssh -i ~/.ssh/deploy_ed25519" "$TEMP_DIR/dist/" "deploy@${HOST}:/var/www/site/"
ssh -i ~/.ssh/deploy_ed25519 "deploy@${HOST}" 'sudo systemctl reload nginx'
rm -rf "$TEMP_DIR"
echo "deployed to $HOST"
