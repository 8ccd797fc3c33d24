"""Adapters into the mail flow: Postfix policy service, milter, SMTP proxy.

Each turns a recipient into a Verdict (policy) and the Verdict into its protocol's answer
(``answers``); none imports another.
"""
