"""click's CliRunner with stdout and stderr kept apart on every click the runtime admits (setup.cfg: >= 8.0).

click 8.2 keeps them apart always, ``result.output`` being both as a terminal shows them. 8.0 and 8.1 (the newest
on Python 3.9) mix them unless told not to, and then their ``result.output`` is stdout alone; here it is stdout
then stderr, so a test's ``... in r.output`` (a message, or a traceback that must not be there) means the same on
every click.
"""
import inspect

from click.testing import CliRunner, Result

_MIXES_BY_DEFAULT = "mix_stderr" in inspect.signature(CliRunner.__init__).parameters


class _BothStreams(Result):
    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(command, args, **kwargs):
    """``CliRunner().invoke(command, args)`` with ``result.stdout`` and ``result.stderr`` apart and
    ``result.output`` both; args are str()-ed (paths welcome). Returns click's Result."""
    if not _MIXES_BY_DEFAULT:
        return CliRunner().invoke(command, [str(a) for a in args], **kwargs)
    result = CliRunner(mix_stderr=False).invoke(command, [str(a) for a in args], **kwargs)
    result.__class__ = _BothStreams
    return result
