#!/usr/bin/env bash
# Makes sure promtool, Prometheus's rule checker, is on PATH: it checks and
# unit-tests the alert rules in deploy/alerts (make alerts-test). When it is
# missing and this is a Debian machine where we are root (CI, the dev VM),
# installs Debian's prometheus package, which carries it; otherwise says
# exactly what to install.
set -euo pipefail

command -v promtool >/dev/null && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "promtool is required: install Debian's prometheus package as root (apt-get install --no-install-recommends prometheus), or put promtool on PATH, and retry" >&2
  exit 1
fi

echo "promtool is missing: installing Debian's prometheus package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Without recommends: they add prometheus-node-exporter, another server.
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The package also installs the Prometheus server as a service. Where no init
# system runs (containers, CI) or policy-rc.d forbids it, nothing starts; under
# systemd it would be started and enabled, holding :9090, the port Compose's
# Prometheus publishes. Only promtool is wanted here.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  echo "stopping and disabling the prometheus service the package started: only promtool is needed" >&2
  systemctl disable --now prometheus >/dev/null 2>&1
fi

command -v promtool >/dev/null || { echo "the prometheus package installed no promtool" >&2; exit 1; }
