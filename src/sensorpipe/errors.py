"""The one root of every error a user can cause or fix.

Its message is the whole story for the user: the cause and the fix, in one line. `sensorpipe`'s
command line catches it in one place and prints that line; any other exception is a bug, shown with
a hint to rerun with `-v` for the traceback.
"""

from __future__ import annotations


class SensorpipeError(Exception):
    """An error the user can act on: a wrong setting, a service down, a missing jar, a refused login."""


__all__ = ["SensorpipeError"]
