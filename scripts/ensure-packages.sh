#!/usr/bin/env bash
# Installs the Debian packages the embedded stack runs (Prometheus, Alertmanager, Pushgateway, PostgreSQL, a JDK,
# Maven) and the tests' headless browser (Chromium) when they are missing. Needs root for apt-get; otherwise says
# what to install and fails.
set -euo pipefail

declare -A need=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [prometheus-pushgateway]=prometheus-pushgateway
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [chromium]=chromium
)
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
# PostgreSQL's server binaries live outside PATH, in /usr/lib/postgresql/<version>/bin
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "twinlayer: missing Debian packages: ${missing[*]}" >&2
  echo "twinlayer: install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian packages start no daemon in a container without systemd; stop any that an init system started, so
# their default ports do not clash with the stack's.
for svc in prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
