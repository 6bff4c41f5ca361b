"""The engine service: sequencer and durable owner of the order books of one shard's symbols.

It accepts batched requests from backends over the wire protocol (``hft_platform.wire``), runs
them through the compiled engine in arrival order, group-commits each batch to PostgreSQL in one
transaction and only then replies. It never speaks HTTP to clients (only /metrics and probes).
"""
