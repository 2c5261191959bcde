#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus + promtool) when promtool is missing:
# test/deploy/dashboards.test.ts runs a real Prometheus against the service and fails
# (it does not skip) without it. The package's system service is not started: the test
# starts its own Prometheus on a free loopback port with a temporary config and data dir.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "prometheus present: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 keeps dpkg from starting the packaged service where it would
# (machines with an init system); removed again afterwards if this script created it.
created_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
trap 'if [ -n "$created_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "installed: $(prometheus --version 2>&1 | head -1)"
