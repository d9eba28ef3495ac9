"""The local suite: what `panoptic up` runs on one machine, above the services.

Supervision of the services' processes, the embedded PostgreSQL, migrating, Prometheus for
`--with-monitoring`, health probes, progress output and the demo corpus. The CLI and the
benchmarks stand on it; no service imports it.
"""
