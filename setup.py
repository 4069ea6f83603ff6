"""setup.cfg holds the package's metadata; this file only keeps a rebuild from shipping stale modules.

pip builds in the checkout's build/ folder and setuptools copies the package into build/lib over what an earlier
build left there: a module since removed or renamed (a `git pull`) would still be installed. The runtime's folder
in build/lib is cleared before each copy."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class FreshBuildPy(build_py):
    def run(self):
        shutil.rmtree(os.path.join(self.build_lib, "fasterpose_rt"), ignore_errors=True)
        super().run()


setup(cmdclass={"build_py": FreshBuildPy})
