"""User-facing errors: raised for bad input, reported as one line by the entry points."""


class NagoError(Exception):
    """A problem with the user's input (config, hyper-parameters, paths, files).

    Entry points print ``error: <message>`` and exit with status 2 instead of a traceback.
    """
