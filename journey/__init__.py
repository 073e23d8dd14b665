"""The theme database, the nightly sync pipeline, the write-back outbox and the journey map.

The only package that touches the database and the file system.
"""
