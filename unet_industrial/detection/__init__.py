"""The detect job: a trained, calibrated run's verdict on a video or on each video of a folder.

Faces are cut exactly as `data_pipeline.prepare` cut the run's training
crops, by the crop recipe (`data_pipeline.recipe.CropRecipe`) that prepare
wrote into its manifest, training copied into the run and calibration kept
(`with_recipe`): the recipe's frames_per_video evenly spaced frames
(`video.sample_indices`), MTCNN on a copy of at most its detection_max_side
pixels with the faces tracked through the frames as prepare tracked them
(`tracking.decode_for_tracking`, `tracking.track_decoded`), all faces, each box squared and enlarged by its
crop_scale (`faces.square_box`), cut from the full-resolution frame at its
image_size (`faces.crop_face`, `cut_faces`), then fed through the reader's
own transform (`data_pipeline.model_input.to_model_input`). Then, with the
run's calibration.json (`verdicts.Calibration`): a crop's score
(`verdicts.frame_scores`), a frame's the maximum over its faces
(`verdicts.max_over_faces`), the video's the calibrated aggregation of its
frames' scores (`verdicts.video_score`), and the verdict "fake" when that
reaches the video threshold. A video in which no sampled frame has a face
gets no verdict, never a guess. Without --run_dir, the detector that ships
in the package (`run_files.SHIPPED_RUN_DIR`) is used.

Memory: each video is decoded once (`tracking.decode_for_tracking`): every
sampled frame is shrunk to its detection-size copy as it is decoded, and the
full-resolution frames are held only up to `tracking.HELD_FRAMES_BYTES` to cut
the crops after tracking; frames beyond that (very large or very many) are
decoded a second time, one at a time. The detection-size copies are held for
tracking, and for the overlay when one is asked for. At most
`MAX_FRAMES_PER_VIDEO` frames are sampled. A folder is pipelined: the next
video is decoded and its faces found while the current one is scored, so
two videos' frames are in memory at most.

Outputs (each optional; none is written before the input is checked, and
none replaces an existing file):
  stdout        one line per video, then "wrote PATH" per file written.
  json_out      the run, checkpoint and calibration, and per video: the
                score, verdict, threshold, aggregation, seconds per stage
                (decode, detect, model) and per sampled frame its score and
                faces (tracked box, crop box, score).
  csv_out       one row per video (`CSV_COLUMNS`); for a folder it defaults
                to runs/NAME/detections/<folder name>-<UTC time>.csv.
  overlay_out   the sampled frames (at detection size) with each crop box,
                the pixels the model calls fake tinted red, and the scores:
                an .mp4 for one video; for a folder, a folder of one .mp4
                per video at the video's relative path. A classifier run
                (`--model_kind=classifier`) predicts no fake pixels: its
                overlay has the boxes and scores alone.
A file of a folder that cannot be read is a row with its reason and the run
goes on; a single video that cannot be read is an error.

Modules: config (DetectConfig, its checks, the run's crop recipe, the
videos to detect on), results (what was found, its line, row and record),
cutting (decoding once and cutting the faces), overlay (drawing and writing
the overlay), job (detect_video, detect).
"""

from unet_industrial.detection.config import (DETECTIONS_DIR, MAX_FRAMES_PER_VIDEO, DetectConfig,
                                              default_csv_path, find_videos, validate, with_recipe)
from unet_industrial.detection.cutting import CutFaces, cut_faces, tracking_config
from unet_industrial.detection.job import (MODEL_CHUNK_PIXELS, crops_per_call, detect, detect_video,
                                           json_report)
from unet_industrial.detection.overlay import (BOX_COLOUR, FAKE_COLOUR, OVERLAY_FPS, TINT_OPACITY,
                                               write_overlay)
from unet_industrial.detection.results import CSV_COLUMNS, NO_FACE, FaceResult, FrameResult, VideoResult

__all__ = ["BOX_COLOUR", "CSV_COLUMNS", "DETECTIONS_DIR", "FAKE_COLOUR", "MAX_FRAMES_PER_VIDEO",
           "MODEL_CHUNK_PIXELS", "NO_FACE", "OVERLAY_FPS", "TINT_OPACITY", "CutFaces", "DetectConfig",
           "FaceResult", "FrameResult", "VideoResult", "crops_per_call", "cut_faces", "default_csv_path",
           "detect", "detect_video", "find_videos", "json_report", "tracking_config", "validate",
           "with_recipe", "write_overlay"]
