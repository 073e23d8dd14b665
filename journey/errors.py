"""Errors `journey/` raises; `cli.py` maps ConfigError to exit 2 and the rest to exit 1."""


class CjmError(Exception):
    """A failure with a one-line message meant for the person running cjm."""


class ConfigError(CjmError):
    """The config file, the environment or a command's options are wrong: exit code 2."""


class SyncLockedError(CjmError):
    """Another `cjm sync` holds the lock for this source."""
