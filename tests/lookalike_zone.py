"""Look-alikes of army.mil planted in every mail state, for a DnsServer (dns_server.py)."""

# Each look-alike below is one typogate's error model ranks for army.mil; the state each
# should come out as is in PLANTED. example.ml exists but is no look-alike of anything.
ZONES = {
    "army.ml": (
        "@ MX 20 mx2.army.ml.\n"
        "@ MX 10 mail.army.ml.\n"
        "mail A 192.0.2.10\n"
        "mx2 A 192.0.2.11\n"
        '@ TXT "v=spf1 mx -all"\n'
        '_dmarc TXT "v=DMARC1; p=none"\n'
    ),
    "arrny.mil": "@ MX 0 .\n",  # null MX (RFC 7505)
    "amry.mil": "",  # registered, no mail
    "arny.mil": '@ TXT "v=spf10 not spf"\n',  # registered, no mail, a TXT that is not SPF
    "armymil.com": "@ A 192.0.2.20\n",  # implicit MX
    "xn--rmy-5cd.mil": "@ AAAA 2001:db8::21\n",  # аrmy.mil, Cyrillic а: address only
    "example.ml": "@ MX 10 mail.example.ml.\n",
}
PLANTED = {
    "army.ml": ("mx", ["mail.army.ml", "mx2.army.ml"], True, True),
    "arrny.mil": ("null_mx", [], False, False),
    "amry.mil": ("no_mail", [], False, False),
    "arny.mil": ("no_mail", [], False, False),
    "armymil.com": ("a_only", [], False, False),
    "аrmy.mil": ("a_only", [], False, False),
}
