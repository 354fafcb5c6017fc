"""Workload modules: each public module here exposes ``WORKLOADS: list[Workload]``."""
