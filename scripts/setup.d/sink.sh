# A real authoritative DNS server (NSD) for the sink's zone test: it loads the records
# `typogate sink records` prints. Started per test on a loopback port, never as a service.
apt_packages+=(nsd)
