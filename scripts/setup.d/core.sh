# Debian packages for the core and the milter (pymilter builds against libmilter).
apt_packages+=(build-essential libmilter-dev)
