"""The rules engine: campaign runtime, eligibility, atomic claims in Redis Lua, idempotency.

The engine knows games and reward adapters only through its registries; it
imports no concrete plugin and nothing of the web layer.
"""
