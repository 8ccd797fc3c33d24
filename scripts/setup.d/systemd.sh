# systemd-analyze for the test that verifies the service files in packaging/systemd (the
# package installs the tool; nothing is started).
apt_packages+=(systemd)
