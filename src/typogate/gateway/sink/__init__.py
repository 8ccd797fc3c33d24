"""The sink: an SMTP server at look-alike domains that refuses misdirected mail at RCPT with
the address the sender meant, keeps metadata only, and reports to the intended organisation.

``settings`` (the ``[sink]`` section), ``decision`` (which domains it serves and what it
answers), ``records`` (the metadata kept), ``smtp`` (the aiosmtpd server), ``reports`` (daily
aggregates and their mail), ``zone`` (the DNS records that route mail to it, or nowhere).
"""
