#!/usr/bin/env bash
# Installs the Debian packages the tests use as real peers (Python grpcio as an independent
# gRPC implementation, pymodbus/socat for Modbus, mosquitto, redis-server, mariadb-server, ffmpeg), when they
# are missing. Needs root (CI runs as root); without root it says what is missing and which
# tests will fail.
set -euo pipefail
PKGS=(python3-grpcio python3-grpc-tools protobuf-compiler libprotobuf-dev python3-pymodbus python3-serial-asyncio socat mbpoll mosquitto redis-server mariadb-server ffmpeg v4l-utils acl chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[setup-peers] all peer packages present"
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "[setup-peers] missing Debian packages: ${missing[*]} (not root: install them with apt-get, or tests needing them fail)" >&2
  exit 0
fi
echo "[setup-peers] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[setup-peers] done"
