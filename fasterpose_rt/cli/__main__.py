"""``python -m fasterpose_rt.cli``: the ``fasterpose`` command."""
from . import main

main()
