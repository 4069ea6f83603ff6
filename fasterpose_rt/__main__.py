"""``python -m fasterpose_rt``: the ``fasterpose`` command, through its launcher (a Ctrl-C while it loads is one line;
``python -m fasterpose_rt.cli`` loads the command line before the launcher runs)."""
from .launcher import main

main()
