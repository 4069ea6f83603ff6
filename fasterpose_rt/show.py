"""A window that shows drawn frames as they are processed (``fasterpose predict --show``).

opencv-python-headless, the runtime's own dependency, has no windows: ``--show`` needs OpenCV built with a GUI
(``pip install opencv-python`` in its place) and a display. Without them the CLI says so before it starts.
"""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

__all__ = ["Window", "ShowUnavailable", "STOP_KEYS"]

STOP_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc stops the input being shown


class ShowUnavailable(Exception):
    """No window can be opened here; the message says why and what to do."""


class Window:
    """One OpenCV window. ``show(image)`` draws a (H, W, 3) uint8 BGR picture and returns False once the user
    pressed q or Esc, or closed the window; ``hold(image)`` does so and waits for a key; ``close()`` removes it.
    Raises ShowUnavailable when OpenCV has no GUI or (on Linux) there is no display."""

    def __init__(self, title: str = "fasterpose"):
        self.title = title
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ShowUnavailable("--show needs a display (DISPLAY or WAYLAND_DISPLAY is not set); use --vis to "
                                  "write the drawn frames to a folder instead")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise ShowUnavailable("--show needs OpenCV with a GUI: pip uninstall -y opencv-python-headless "
                                  "opencv-python && pip install opencv-python (both install cv2: docs/usage.md, "
                                  "'Watching'), or use --vis to write the drawn frames instead") from None

    def show(self, image: np.ndarray) -> bool:
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1)
        if key != -1 and (key & 0xFF) in STOP_KEYS:
            return False
        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1  # 0 once the user closed it

    def hold(self, image: np.ndarray) -> bool:
        """Draw a (H, W, 3) uint8 BGR picture and wait for a key (a photo, not a frame): False for q or Esc, or
        once the user closed the window."""
        cv2.imshow(self.title, image)
        while True:  # in short waits: a closed window sends no key on every backend
            key = cv2.waitKey(100)
            if key != -1:
                return (key & 0xFF) not in STOP_KEYS
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:  # already gone
            pass
