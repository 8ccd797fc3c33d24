# A real DNS server for the monitor's tests and bench: NSD, started per test on a loopback
# port with the planted zones (tests/dns_server.py), never as a system service.
# NSD rather than BIND, Knot or Unbound: authoritative only (nothing recursive to switch
# off), one small config file, zones read straight from text, a reload by SIGHUP, and it
# holds the root zone, so every name outside the planted zones is an authoritative NXDOMAIN.
apt_packages+=(nsd)
