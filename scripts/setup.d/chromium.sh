# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
apt_packages+=(chromium fonts-liberation)
