"""Look-alikes of the protected domains: ranked, their mail state in DNS, watched."""
