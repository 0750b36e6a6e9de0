"""Shadow-AI egress control: a forward proxy that refuses, records and reports direct calls to AI providers.

Nothing is re-exported here: `proxy.config` imports `proxy.egress.config`, which must not pull in the server.
"""
