"""decoder_messages: a photo decoder's stderr lines are kept for the caller to name the photo; nothing else printed
meanwhile is lost, and nothing is caught where collecting is off."""
import os
import threading

import cv2
import pytest
import numpy as np

from fasterpose_rt.decoder_messages import collect_decoder_messages, damage_said, stderr_captured
from fasterpose_rt.inputs import read_image


def _damaged_jpeg(tmp_path):
    image = np.zeros((600, 400, 3), np.uint8)
    image[..., 1] = np.linspace(0, 255, 400, dtype=np.uint8)
    cv2.circle(image, (200, 300), 120, (40, 200, 90), -1)
    data = bytearray(cv2.imencode(".jpg", image)[1].tobytes())
    data[len(data) // 2:len(data) // 2 + 200] = bytes(200)
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(data))
    return path


def test_collected_in_its_thread_only_and_said_unnamed_elsewhere(tmp_path, capfd):
    path = _damaged_jpeg(tmp_path)
    with collect_decoder_messages() as said:
        image = read_image(path)
    assert image.shape == (600, 400, 3) and said and said[0].startswith("Corrupt JPEG data"), said
    assert "Corrupt JPEG data" not in capfd.readouterr().err
    read_image(path)  # collecting off: libjpeg's line reaches stderr as before
    assert "Corrupt JPEG data" in capfd.readouterr().err
    other: list = []
    with collect_decoder_messages() as said:  # another thread's decode is not this thread's to collect
        worker = threading.Thread(target=lambda: other.append(read_image(path)))
        worker.start()
        worker.join()
    assert not said and len(other) == 1 and "Corrupt JPEG data" in capfd.readouterr().err


@pytest.mark.parametrize("kept", [0.5, 0.9, "all but its end marker"])
def test_a_jpeg_cut_short_is_decoded_as_far_as_it_goes_as_a_file_reader_would(tmp_path, kept):
    """review s66: OpenCV's decode of bytes in memory refused a JPEG cut off (an interrupted copy or download),
    even one missing only its last 2 bytes, where cv2.imread decodes it and fills the rest in gray."""
    image = np.zeros((600, 400, 3), np.uint8)
    cv2.circle(image, (200, 300), 120, (40, 200, 90), -1)
    whole = cv2.imencode(".jpg", image)[1].tobytes()
    cut = whole[:-2] if isinstance(kept, str) else whole[:int(len(whole) * kept)]
    path = tmp_path / "cut.jpg"
    path.write_bytes(cut)
    assert cv2.imdecode(np.frombuffer(cut, np.uint8), cv2.IMREAD_COLOR) is None  # what the runtime did with it
    with collect_decoder_messages() as said:
        image = read_image(path)
    np.testing.assert_array_equal(image, cv2.imread(str(path)))
    assert "Premature end of JPEG file" in said
    assert damage_said(said).startswith("damaged data, decoded as far as the decoder could")


def test_what_else_reached_stderr_in_the_window_is_written_back(capfd):
    with stderr_captured() as caught:
        os.write(2, b"a progress bar\r")
        os.write(2, b"Corrupt JPEG data: premature end of data segment\nanother line\n")
    assert caught == ["Corrupt JPEG data: premature end of data segment"]
    assert capfd.readouterr().err == "a progress bar\ranother line\n"


def test_damage_is_told_from_a_decoder_remark():
    assert damage_said(["Corrupt JPEG data: bad Huffman code"] * 2) == (
        "damaged data, decoded as far as the decoder could: parts may be gray or garbled (Corrupt JPEG data: bad "
        "Huffman code)")
    assert damage_said(["libpng warning: iCCP: known incorrect sRGB profile"]) == (
        "its decoder said: libpng warning: iCCP: known incorrect sRGB profile")


def _speak_and(then):
    """A stand-in decode: libjpeg's words on descriptor 2, then ``then()``."""
    def decode():
        os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
        return then()
    return decode


def test_lines_are_kept_when_the_decode_raises_and_nested_windows_keep_the_outer(capfd):
    """review s64: a decode that raised inside the window lost its decoder's lines (kept from stderr, never
    returned); a window opened inside another in one thread would wipe the outer's spool."""
    from fasterpose_rt.decoder_messages import decoded_saying

    def fail():
        raise ValueError("too large")

    with collect_decoder_messages() as said:
        with pytest.raises(ValueError):
            decoded_saying(_speak_and(fail))
    assert said == ["Corrupt JPEG data: bad Huffman code"]
    with stderr_captured() as outer:
        os.write(2, b"Premature end of JPEG file\n")
        with stderr_captured() as inner:
            os.write(2, b"Corrupt JPEG data: premature end of data segment\n")
    assert inner == [] and outer == ["Premature end of JPEG file", "Corrupt JPEG data: premature end of data segment"]
    assert capfd.readouterr().err == ""


def test_an_exit_that_cannot_wait_for_a_window_puts_stderr_back(capfd, monkeypatch):
    """review s64: at exit a window still open after 5 s (a reader decoding a huge photo) kept descriptor 2 on
    the spool, and whatever the program printed last was lost."""
    import fasterpose_rt.decoder_messages as dm

    monkeypatch.setattr(dm, "_EXIT_WAIT", 0.1)
    monkeypatch.setattr(dm, "_closed", False)
    opened, release = threading.Event(), threading.Event()

    def hold():
        with stderr_captured():
            opened.set()
            release.wait(10)

    reader = threading.Thread(target=hold)
    reader.start()
    assert opened.wait(10)
    dm._close()  # as atexit runs it
    os.write(2, b"the run's last words\n")
    release.set()
    reader.join()
    assert "the run's last words" in capfd.readouterr().err
    with stderr_captured() as caught:  # closed: no window opens after the exit began
        os.write(2, b"Corrupt JPEG data: bad Huffman code\n")
    assert caught == [] and "Corrupt JPEG data" in capfd.readouterr().err


def test_an_exit_never_puts_back_a_descriptor_the_reader_closed_meanwhile(tmp_path, capfd, monkeypatch):
    """review s64: _close read the window's saved descriptor, and between that and its dup2 the reader could end
    the window, close that number and open its next file under it: stderr then wrote into that file."""
    import fasterpose_rt.decoder_messages as dm

    monkeypatch.setattr(dm, "_EXIT_WAIT", 0.1)
    monkeypatch.setattr(dm, "_closed", False)
    results = tmp_path / "results.json"
    results.write_text("")
    in_window, finish, reopened = threading.Event(), threading.Event(), threading.Event()

    saved = []

    def reader():
        with collect_decoder_messages():
            dm.decoded_saying(lambda: (saved.append(dm._window_saved), in_window.set(), finish.wait(10)))
        fd = os.open(results, os.O_WRONLY)  # the reader's next file, under the number the window freed (as the
        if fd != saved[0]:  # next open takes it where it is the lowest free)
            os.dup2(fd, saved[0])
            os.close(fd)
        reopened.set()

    real_dup2 = os.dup2

    class SlowExit:  # the exit's dup2 waits for the reader to end its window and open that file, if it can
        def __getattr__(self, name):
            return getattr(os, name)

        def dup2(self, fd, fd2, *rest):
            if threading.current_thread() is threading.main_thread():
                finish.set()
                reopened.wait(0.5)
            return real_dup2(fd, fd2, *rest)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert in_window.wait(10)
    monkeypatch.setattr(dm, "os", SlowExit())
    dm._close()
    os.write(2, b"message printed at exit\n")
    thread.join(10)
    os.close(saved[0])
    assert results.read_text() == "" and "message printed at exit" in capfd.readouterr().err


def test_the_spool_file_is_closed_at_exit(tmp_path):
    """The CLI's decoder window spools libjpeg's stderr into a temporary file kept for reuse: left open at exit, it
    gave "ResourceWarning: unclosed file" where warnings show (python -X dev; the test runs)."""
    import subprocess
    import sys

    path = _damaged_jpeg(tmp_path)
    r = subprocess.run([sys.executable, "-X", "dev", "-m", "fasterpose_rt", "predict", str(path), "--no-search",
                        "--out", os.devnull], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "damaged data" in r.stderr, r.stderr
    assert "ResourceWarning" not in r.stderr, r.stderr
