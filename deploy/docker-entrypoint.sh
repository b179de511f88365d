#!/bin/sh
# First start of the container: give the /data volume a starter config whose API listens on
# every interface inside the container (compose publishes it on the host's 127.0.0.1 only).
# An existing config.toml is never touched.
set -eu
home="${HERMES_HOME:-/data}"
starter="${HERMES_STARTER_CONFIG:-/opt/hermes/share/config.container.toml}"
if [ ! -e "$home/config.toml" ]; then
    cp "$starter" "$home/config.toml"
    chmod 600 "$home/config.toml"
    echo "hermes: wrote a starter $home/config.toml (edit it in the volume; reload with SIGHUP)" >&2
fi
exec "$@"
