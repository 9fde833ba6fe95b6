"""Recording: videos decode with the expected frame count and size; bad requests are refused."""
import math
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from engine.lessons import LESSONS
from gui.record_command import build_parser, frame_count
from gui.recording import FrameGrabber, RecordingError, VideoWriter, check_output, render_fixed

ROOT = Path(__file__).resolve().parents[2]


def _decode_mp4(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(meta["size"][1], meta["size"][0], 3) for f in reader]
    return meta, frames


def _write_gif(path, fps, greys):
    writer = VideoWriter(path, (40, 30), fps=fps)
    for grey in greys:
        writer.write(np.full((30, 40, 3), grey, np.uint8))
    return writer.close()


def _decoded_gif_durations(path):
    with Image.open(path) as image:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(image)]


def test_mp4_has_every_frame_at_the_fixed_size_and_rate(tmp_path):
    writer = VideoWriter(tmp_path / "v.mp4", (96, 64), fps=24)
    for i in range(37):
        writer.write(np.full((64, 96, 3), (i * 7) % 256, np.uint8))
    assert writer.close() == 37
    meta, frames = _decode_mp4(tmp_path / "v.mp4")
    assert meta["size"] == (96, 64) and meta["fps"] == 24 and len(frames) == 37
    # frames keep their order: the grey ramp survives lossy coding to within a few levels
    assert abs(int(frames[10].mean()) - 70) <= 4 and abs(int(frames[30].mean()) - 210) <= 4


def test_gif_has_every_frame(tmp_path):
    writer = VideoWriter(tmp_path / "v.gif", (40, 30), fps=10)
    for i in range(12):
        writer.write(np.full((30, 40, 3), i * 20, np.uint8))
    assert writer.close() == 12
    image = Image.open(tmp_path / "v.gif")
    assert image.size == (40, 30) and image.n_frames == 12 and image.info["duration"] == 100


def test_gif_at_15_fps_stays_within_10_ms_of_the_wall_clock(tmp_path):
    frames = 31
    assert _write_gif(tmp_path / "v.gif", 15, [i * 8 for i in range(frames)]) == frames
    durations = _decoded_gif_durations(tmp_path / "v.gif")
    assert len(durations) == frames and all(d % 10 == 0 for d in durations)
    assert durations[:6] == [70, 60, 70, 70, 60, 70]
    for k in range(1, frames + 1):
        assert abs(sum(durations[:k]) - k * 1000 / 15) <= 10, k
    assert abs(sum(durations) - frames * 1000 / 15) <= 10


def test_gif_at_10_fps_shows_every_frame_for_100_ms(tmp_path):
    assert _write_gif(tmp_path / "v.gif", 10, [i * 20 for i in range(12)]) == 12
    assert _decoded_gif_durations(tmp_path / "v.gif") == [100] * 12


def test_gif_repeated_frames_keep_the_clock(tmp_path):
    # Repeats (the live grabber's missed ticks) are merged by Pillow into one longer frame.
    greys = [0, 0, 0, 50, 100, 100, 150, 150, 150, 150, 200]
    assert _write_gif(tmp_path / "v.gif", 15, greys) == len(greys)
    durations = _decoded_gif_durations(tmp_path / "v.gif")
    assert len(durations) == 5
    assert abs(sum(durations[:1]) - 3 * 1000 / 15) <= 10       # the three black frames
    assert abs(sum(durations) - len(greys) * 1000 / 15) <= 10


@pytest.mark.parametrize("seconds, fps, frames", [
    (0.5, 7, 4), (1, 8, 8), (0.5, 5, 3), (2.05, 30, 62), (0.58, 25, 15), (0.3, 10, 3), (0.1, 2, 1), (0.01, 1, 1),
])
def test_record_frame_count_rounds_to_nearest_halves_up_at_least_one(seconds, fps, frames):
    assert frame_count(seconds, fps) == frames


@pytest.mark.parametrize("frames, steps", [(60, 300), (7, 1), (4, 1), (30, 30), (1, 500), (1800, 300), (3, 10)])
def test_record_spreads_the_lessons_steps_over_the_frames(frames, steps):
    """The video trains exactly the lesson's steps, evenly: by frame k (1-based) ceil(k * steps / frames)
    steps are done, so the first frame shows a trained step and the last the lesson's last; with more
    frames than steps some frames repeat a step, rather than training past the lesson."""
    from gui.record_command import steps_before_frame
    per_frame = [steps_before_frame(k, frames, steps) for k in range(frames)]
    done = np.cumsum(per_frame)
    assert done[-1] == steps and done[0] >= 1 and min(per_frame) >= 0
    assert list(done) == [math.ceil((k + 1) * steps / frames) for k in range(frames)]
    assert max(per_frame[1:], default=0) - min(per_frame[1:], default=0) <= 1


def test_record_help_states_the_frame_count_rule():
    help_text = " ".join(build_parser().format_help().split())
    assert "seconds x fps frames, rounded to the nearest whole frame (halves up), at least 1" in help_text


@pytest.mark.parametrize("path, size, fps, words", [
    ("x.avi", (64, 64), 30, "--out"), ("x.mp4", (63, 64), 30, "--size"), ("x.mp4", (64, 8), 30, "--size"),
    ("x.gif", (64, 64), 0, "--fps"),
])
def test_bad_recording_requests_name_the_option(path, size, fps, words):
    with pytest.raises(RecordingError, match=words):
        check_output(path, size, fps)


def test_an_out_path_that_is_a_folder_or_under_a_file_is_refused_by_name(tmp_path):
    folder = tmp_path / "lecture.mp4"
    folder.mkdir()
    with pytest.raises(RecordingError, match=r"--out: .*lecture.mp4' is a folder"):
        check_output(folder, (64, 64), 30)
    afile = tmp_path / "notes"
    afile.write_text("")
    with pytest.raises(RecordingError, match=r"--out: .*'.*notes' is a file, not a folder"):
        check_output(afile / "deeper" / "x.gif", (64, 64), 15)
    assert check_output(tmp_path / "new" / "x.gif", (64, 64), 15)[0] == tmp_path / "new" / "x.gif"  # made later


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_a_file_that_fails_at_its_end_is_reported_in_one_line_not_a_hang(suffix, tmp_path, monkeypatch):
    """The encoder fails only after it took the end marker (Pillow writes a GIF when it is closed,
    ffmpeg may fail as it closes): close() reports it, in one line, instead of waiting for ever for a
    second end marker."""
    import threading

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device\n(the rest of the encoder's log)")

    def ffmpeg_that_fails_when_closed(*args, **kwargs):
        try:
            while True:
                yield
        except GeneratorExit:
            disk_full()
    monkeypatch.setattr(Image.Image, "save", disk_full)
    monkeypatch.setattr(imageio_ffmpeg, "write_frames", ffmpeg_that_fails_when_closed)
    writer = VideoWriter(tmp_path / f"v{suffix}", (32, 32), fps=10)
    for _ in range(3):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    outcome = []

    def close():
        try:
            writer.close()
        except RecordingError as exc:
            outcome.append(str(exc))
    closer = threading.Thread(target=close, daemon=True)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "close() hung"
    assert outcome == ["recording failed: [Errno 28] No space left on device"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be made")
def test_an_out_path_that_cannot_be_written_is_refused_before_recording(tmp_path):
    from gui.recording import check_writable
    with pytest.raises(RecordingError, match=r"--out: '/proc/x.gif' cannot be written \(No such file"):
        check_writable(Path("/proc/x.gif"))
    fresh = tmp_path / "new" / "x.mp4"
    check_writable(fresh)  # makes the folder, leaves no empty file behind
    assert fresh.parent.is_dir() and not fresh.exists()
    result = subprocess.run([sys.executable, "main.py", "record", "--lesson", next(iter(LESSONS)), "--seconds", "1",
                             "--out", "/proc/x.mp4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "'/proc/x.mp4' cannot be written" in \
        result.stderr, result.stderr


def test_frame_of_the_wrong_size_is_refused(tmp_path):
    writer = VideoWriter(tmp_path / "v.mp4", (32, 32), fps=10)
    with pytest.raises(RecordingError, match="differs"):
        writer.write(np.zeros((30, 32, 3), np.uint8))
    writer.write(np.zeros((32, 32, 3), np.uint8))
    assert writer.close() == 1


def test_render_fixed_letterboxes_any_widget_size(qtbot):
    from PySide6.QtWidgets import QLabel
    label = QLabel("x")
    label.setStyleSheet("background: white;")
    qtbot.addWidget(label)
    for w, h in ((300, 100), (100, 300)):
        label.resize(w, h)
        frame = render_fixed(label, (128, 72), background="#000000")
        assert frame.shape == (72, 128, 3)
        assert frame[36, 64].mean() > 200          # the widget, centred
    tall = render_fixed(label, (128, 72), "#000000")
    assert tall[36, 2].mean() < 10                 # black bars at the sides of a tall widget


def test_live_grabber_keeps_wall_clock_rate_and_loses_no_frames(qtbot, tmp_path):
    from PySide6.QtWidgets import QLabel
    label = QLabel("recording")
    qtbot.addWidget(label)
    label.resize(200, 100)
    grabber = FrameGrabber(label, tmp_path / "live.mp4", size=(64, 32), fps=20)
    grabber.start()
    qtbot.waitUntil(lambda: grabber.elapsed >= 0.5, timeout=5000)
    label.resize(400, 50)  # a resize mid-recording must not change the video
    qtbot.waitUntil(lambda: grabber.elapsed >= 1.0, timeout=5000)
    expected_min = int(grabber.elapsed * 20)
    with qtbot.waitSignal(grabber.finished, timeout=10000) as blocker:
        frames = grabber.stop()
    assert blocker.args[1] == frames and frames >= expected_min
    meta, decoded = _decode_mp4(tmp_path / "live.mp4")
    assert meta["size"] == (64, 32) and len(decoded) == frames


@pytest.mark.window
def test_a_recording_at_60_fps_of_the_training_window_has_exactly_the_frames_of_its_duration(make_window, qtbot,
                                                                                           tmp_path):
    """The window trains and draws every view while a 60 fps recording grabs it: however many ticks the event
    loop missed, the video holds the frames of its wall-clock duration, int(duration * 60) + 1, at 60 fps."""
    from gui.views import ALL_VIEWS
    window = make_window(view_classes=ALL_VIEWS)
    window.resize(1280, 720)
    window.session.play()
    qtbot.waitUntil(lambda: window.display.frames >= 3, timeout=30_000)
    drawn = window.display.frames
    grabber = FrameGrabber(window, tmp_path / "window.mp4", size=(320, 180), fps=60)
    grabber.start()
    qtbot.waitUntil(lambda: grabber.elapsed >= 1.5, timeout=20_000)
    with qtbot.waitSignal(grabber.finished, timeout=20_000):
        frames = grabber.stop()
    window.session.pause()
    assert frames == int(grabber.duration * 60) + 1
    assert window.display.frames > drawn  # the views went on drawing while it recorded
    meta, decoded = _decode_mp4(tmp_path / "window.mp4")
    assert len(decoded) == frames and meta["fps"] == 60 and meta["size"] == (320, 180)


def test_record_command_writes_the_expected_frames(tmp_path):
    out = tmp_path / "lesson.mp4"
    result = subprocess.run([sys.executable, "main.py", "record", "--lesson", next(iter(LESSONS)), "--seconds", "1",
                             "--fps", "8", "--size", "320x180", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    meta, frames = _decode_mp4(out)
    assert meta["size"] == (320, 180) and len(frames) == 8


def test_record_command_rejects_bad_arguments():
    result = subprocess.run([sys.executable, "main.py", "record", "--lesson", "no-such-lesson", "--seconds", "1",
                             "--out", "x.mp4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--lesson" in result.stderr and "Traceback" not in result.stderr


def test_record_command_refuses_a_zero_frame_rate():
    result = subprocess.run([sys.executable, "main.py", "record", "--lesson", next(iter(LESSONS)), "--seconds", "1",
                             "--fps", "0", "--out", "x.mp4"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--fps" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("size, laid_out", [((320, 240), (640, 480)), ((320, 180), (853, 480)),
                                            ((1280, 720), (1280, 720))])
def test_a_small_video_is_laid_out_larger_and_scaled_down(size, laid_out, tmp_path, qapp, monkeypatch):
    """At 320x240 the views' own layout crowded every axis label and legend into its neighbours: frames
    smaller than LAYOUT_MIN are laid out at that size (aspect kept) and scaled down to the frame."""
    import gui.recording
    from gui.record_command import record
    grabbed = []

    def spy(widget, frame_size, background="#000000"):
        grabbed.append(((widget.width(), widget.height()), frame_size))
        return render_fixed(widget, frame_size, background)

    monkeypatch.setattr(gui.recording, "render_fixed", spy)
    out = tmp_path / "small.gif"
    assert record(next(iter(LESSONS)), 0.2, out, size, fps=10) == 2
    assert grabbed == [(laid_out, size)] * 2
    with Image.open(out) as image:
        assert image.size == size


def test_a_filmed_phase_diagram_shows_its_map_from_the_first_frame(tmp_path, qapp, monkeypatch):
    """The edge-of-chaos lesson films the Phase diagram; its map is measured in a process of its own, and every
    frame of the video was the 'measuring the map' title over an empty plot. The first frame now waits for it."""
    import gui.recording
    from gui.record_command import record
    from gui.views.phase import PhaseView
    maps_at_frames = []

    def spy(widget, frame_size, background="#000000"):
        maps_at_frames.append([(view.maps_drawn, view.measuring) for view in widget.findChildren(PhaseView)])
        return render_fixed(widget, frame_size, background)

    monkeypatch.setattr(gui.recording, "render_fixed", spy)
    assert record("edge-of-chaos", 0.2, tmp_path / "chaos.gif", (320, 240), fps=10, steps_per_frame=1) == 2
    assert maps_at_frames == [[(1, False)]] * 2


def test_record_trains_every_run_of_the_lesson_with_the_users_sets(tmp_path, qapp, monkeypatch):
    """`record --lesson X --set seed=3` films the lesson's runs, each with seed 3, as the window and
    `train` build them (Lesson.runs with the overrides on top)."""
    import engine.trainer
    from gui.record_command import record
    built = []
    original = engine.trainer.Trainer.__init__

    def spy(self, config):
        built.append(config)
        original(self, config)

    monkeypatch.setattr(engine.trainer.Trainer, "__init__", spy)
    assert record("fix-lstm", 0.1, tmp_path / "x.gif", (320, 240), fps=10, steps_per_frame=1,
                  overrides=["seed=3"]) == 1
    assert built == LESSONS["fix-lstm"].runs(["seed=3"]) and [c.seed for c in built] == [3, 3]


def test_record_command_refuses_a_bad_set_before_recording(tmp_path):
    result = subprocess.run([sys.executable, "main.py", "record", "--lesson", "fix-lstm", "--seconds", "1",
                             "--set", "seed=-1", "--out", str(tmp_path / "x.gif")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "seed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.gif").exists()


def test_record_films_the_lesson_on_the_users_data_and_refuses_a_bad_file_first(tmp_path, qapp, monkeypatch):
    import engine.trainer
    from gui import record_command as recording
    built = []
    original = engine.trainer.Trainer.__init__

    def spy(self, config):
        built.append(config)
        original(self, config)

    monkeypatch.setattr(engine.trainer.Trainer, "__init__", spy)
    data = ROOT / "resources" / "sunspots_monthly.csv"
    assert recording.main(["--lesson", "loop", "--seconds", "0.1", "--fps", "10", "--size", "320x240",
                           "--data", str(data), "--out", str(tmp_path / "x.gif")]) == 0
    assert [(c.task, c.data) for c in built] == [("data", str(data))]
    assert recording.main(["--lesson", "loop", "--seconds", "1", "--data", str(tmp_path / "none.csv"),
                           "--out", str(tmp_path / "y.gif")]) == 2
    assert not (tmp_path / "y.gif").exists()


def test_record_says_how_many_frames_a_gif_stores(tmp_path, qapp, capsys):
    """0.5 s at 7 fps is 4 frames, but a GIF keeps equal frames in a row once: the report said 4 and
    the file held 2. Now it says both, and the stored count is the file's own."""
    from gui.record_command import main
    out = tmp_path / "x.gif"
    assert main(["--lesson", "multiply", "--seconds", "0.5", "--fps", "7", "--size", "320x240", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with Image.open(out) as image:
        stored = image.n_frames
    assert "(4 frames," in printed
    assert stored == 4 or f"the GIF stores {stored} of them" in printed, printed


def test_record_of_a_compare_lesson_films_no_run_chooser(tmp_path, qapp, monkeypatch):
    """`record --lesson fix-lstm` filmed the unrolled view's run drop-down, which nobody can use in a
    video: a compare lesson's views are ones that show every run."""
    import gui.views.unrolled
    from gui.record_command import record
    from gui.views.base import ChooserView
    built = []
    original = ChooserView.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(ChooserView, "__init__", spy)
    record("fix-lstm", 0.1, tmp_path / "x.gif", (320, 240), fps=10, steps_per_frame=1)
    # the lesson's own view and the layers view, which show both runs with no run chooser, and no other
    assert sorted(type(v).view_id for v in built) == ["layers", "waterfall"]
    assert gui.views.unrolled.UnrolledView not in {type(v) for v in built}
    assert all(v.shows_every_run for v in built)


def test_record_of_a_compare_lesson_not_pointing_at_the_waterfall_films_it(tmp_path, qapp, monkeypatch):
    """fix-attention looks at the input-influence view; the waterfall and layers views, which draw every
    run, were dropped from its video with the views that have a run chooser."""
    from gui.record_command import filmed_views, record
    from gui.views import ALL_VIEWS
    from gui.views.base import View
    filmed = []
    original = View.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        filmed.append(type(self).view_id)

    monkeypatch.setattr(View, "__init__", spy)
    chosen = filmed_views("attribution", ALL_VIEWS, runs=2)
    assert chosen[0] == "attribution" and "waterfall" in chosen
    record("fix-attention", 0.1, tmp_path / "x.gif", (320, 240), fps=10, steps_per_frame=1)
    assert "waterfall" in filmed and "unrolled" not in filmed


def test_record_films_the_answers_view_of_the_recency_lesson(tmp_path, qapp, monkeypatch):
    """The lesson points at the Answers view: the video shows it measured (a step seen closely every frame)."""
    from gui import record_command as recording
    from gui.views.answers import AnswersView
    titles = []
    original = AnswersView.refresh

    def spy(self, histories):
        original(self, histories)
        titles.append(self.title_label.text())

    monkeypatch.setattr(AnswersView, "refresh", spy)
    assert recording.record("recent-bias", 0.2, tmp_path / "x.gif", (320, 240), fps=10, steps_per_frame=1) == 2
    assert len(titles) == 2 and all(t.startswith("Answer at timestep 99: recent inputs dominate") for t in titles)
