"""``python -m fasterpose_rt.cli``: the ``fasterpose`` command."""
from ..launcher import main

main()
