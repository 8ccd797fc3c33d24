# Debian packages for the gateway tests: a real Postfix (started per test, never as a
# system service) and swaks as the SMTP client. Preseed debconf so the install asks nothing
# and writes no system mail configuration.
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "ok installed"; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string localhost" | debconf-set-selections
fi
apt_packages+=(postfix swaks)
