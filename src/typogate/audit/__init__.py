"""How much has already leaked: readers for mail logs and mailboxes, batch evaluation
(locally or on Dask), and reports. Imports policy and domains; no adapter imports it."""
