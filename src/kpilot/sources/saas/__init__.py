"""SaaS APIs (GA4, HubSpot, Pipedrive, Salesforce, Brevo): their objects copied into the warehouse.

One module per API, each with connector_for() and DEFAULT_TABLES (kpilot.sources.registry lists them). They share
http.py (the client: retries, backoff, auth errors), records.py (JSON records to typed batches) and objects.py
(objects as typed rows, options).
"""
