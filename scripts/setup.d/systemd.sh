# systemd-analyze for the test that verifies the service and socket units in
# packaging/systemd, and systemd-socket-activate for the test that starts typogate on a
# socket as systemd passes it (the package installs the tools; nothing is started).
apt_packages+=(systemd)
