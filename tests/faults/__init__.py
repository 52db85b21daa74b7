"""Fault injection: kill -9, ClickHouse outages, full spools and disks, a locked store."""
