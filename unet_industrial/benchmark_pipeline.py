r"""Where users wait: detect's seconds per video and peak memory, measured as a user runs it.

    python -m unet_industrial.benchmark_pipeline --run_dir=runs/NAME \
        --videos=../shared/realdata/ffpp/original_sequences/youtube/c23/videos/519.mp4

prints, per video, the seconds per stage of `detection.detect_video` (the
model loaded once, before the clock starts) and then the process's CPU
seconds and peak resident memory. The first video is detected twice and
its first pass left out, so graph building is not counted. With
--large_video=PATH it first writes a short --large_side x --large_side video
with a face pasted in (skimage's astronaut) and measures only that file: the
memory check of BENCHMARKS.md. --frames_per_video=N measures the cost of N
sampled frames instead of the recipe's (the growth table; the verdicts of
such a run do not hold, since the video threshold was calibrated on the
recipe's count). prepare's speed is its own manifest's
`speed` section (`python -m data_pipeline.prepare ...`). Speed lives here and
in BENCHMARKS.md, never in timed tests.
"""

import concurrent.futures
import dataclasses
import multiprocessing
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from data_pipeline import cli  # noqa: E402


@dataclasses.dataclass(frozen=True)
class PipelineBenchmarkConfig:
    """The flags of this module.

    Attributes:
      run_dir: a trained run with calibration.json (its crop recipe is followed).
      videos: the videos to detect on, one by one.
      large_video: if set, write a large synthetic video here and measure it alone.
      large_side: its width and height in pixels.
      large_frames: its frame count.
      frames_per_video: 0 for the recipe's count, or another count whose cost to measure.
    """

    run_dir: str = ""
    videos: tuple = ()
    large_video: str = ""
    large_side: int = 4000
    large_frames: int = 10
    frames_per_video: int = 0


def write_large_video(path, side, frames):
    """A side x side H.264 video of `frames` frames, the astronaut's face pasted at a different
    place in each."""
    import cv2
    import numpy as np
    import skimage.data

    from data_pipeline import video_writer

    face = cv2.resize(skimage.data.astronaut()[:320, 64:384], (side // 4, side // 4))
    with video_writer.VideoWriter(path, (side, side), video_writer.COMPRESSIONS["c23"]) as writer:
        for index in range(frames):
            frame = np.full((side, side, 3), 90, np.uint8)
            top, left = side // 3, side // 8 + index * side // (4 * frames)
            frame[top:top + face.shape[0], left:left + face.shape[1]] = face
            writer.write(frame)


def peak_rss_mb():
    """The process's peak resident memory so far, in MB (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(config, report=print):
    """Detects on each video with the run's model loaded once and reports seconds per stage and
    peak memory."""
    from unet_industrial import detection, inference, verdicts

    videos = list(config.videos)
    if config.large_video:
        # Written by a child process: H.264 encoding at this size holds buffers of its own,
        # which would otherwise count in this process's peak memory.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            pool.submit(write_large_video, config.large_video, config.large_side,
                        config.large_frames).result()
        videos = [config.large_video]
    calibration = detection.with_recipe(config.run_dir, verdicts.Calibration.load(config.run_dir))
    if config.frames_per_video:
        recipe = dataclasses.replace(calibration.recipe, frames_per_video=config.frames_per_video)
        calibration = dataclasses.replace(calibration, crop_recipe=recipe.to_dict())
    model = inference.load(config.run_dir)
    if not config.large_video:
        detection.detect_video(videos[0], model, calibration)  # warm-up: graph building is not measured
    for path in videos:
        cpu, started = cpu_seconds(), time.perf_counter()
        result, _ = detection.detect_video(path, model, calibration)
        stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in result.seconds.items())
        report(f"{path}: {result.size[0]}x{result.size[1]}, {len(result.frames)} frames: {stages} s "
               f"(wall {time.perf_counter() - started:.2f} s, cpu {cpu_seconds() - cpu:.2f} s)")
    report(f"peak RSS {peak_rss_mb():.0f} MB")


flags.DEFINE_string("run_dir", "", "A trained run folder with calibration.json.")
flags.DEFINE_list("videos", [], "Videos to detect on.")
flags.DEFINE_string("large_video", "", "Write a large synthetic video here and measure only it.")
flags.DEFINE_integer("large_side", PipelineBenchmarkConfig.large_side, "The large video's width and height.")
flags.DEFINE_integer("large_frames", PipelineBenchmarkConfig.large_frames, "The large video's frame count.")
flags.DEFINE_integer("frames_per_video", 0, "0: the recipe's; else the sampled frames whose cost to measure "
                     "(the verdicts then do not hold).")
FLAGS = flags.FLAGS


def main(argv):
    cli.no_arguments(argv)
    config = PipelineBenchmarkConfig(run_dir=FLAGS.run_dir, videos=tuple(FLAGS.videos),
                                     large_video=FLAGS.large_video, large_side=FLAGS.large_side,
                                     large_frames=FLAGS.large_frames, frames_per_video=FLAGS.frames_per_video)
    if not config.run_dir or not os.path.isdir(config.run_dir):
        cli.fail(f"--run_dir={config.run_dir!r} must name a trained run folder")
    if not config.videos and not config.large_video:
        cli.fail("name --videos or --large_video")
    if config.large_video and os.path.exists(config.large_video):
        cli.fail(f"--large_video={config.large_video!r} exists; name a new file")
    run(config)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
