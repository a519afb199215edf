#!/usr/bin/env bash
# What the console's browser tests (tests/browser) need: Debian's Chromium and its ChromeDriver, and a font
# with Chinese glyphs (without one, every page and screenshot shows boxes). Installed if missing; idempotent.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
  printf '[browser] installing %s from Debian packages\n' "${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
