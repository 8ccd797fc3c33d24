# A real PostgreSQL server for the store tests (started per test on a loopback port,
# never as a system service).
apt_packages+=(postgresql)
