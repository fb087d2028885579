"""agra_ros.workload: synthetic scenes and workload traces, video/image-folder sources, the workload profile W.

``scene``: the project's own detection data set and camera workload (exact ground truth, deterministic from a seed);
its parts: ``scene_types`` (classes, frame, settings), ``scene_sprites`` (an object and its sprite), ``scene_render``
(background, compositing, camera effects).
``trace``: YAML workload traces (config/traces/) - phases of scene density, resolution and target FPS.
``sources``: frame sources for the camera node (synthetic, real video clips, image folder).
``real_media``: the real clips and photos (Debian packages) in the user's cache (``agra-ros fetch-media``).
``features``: the workload profile W (frozen CNN embedding + scalars); imported on its own because it needs torch.
"""

from agra_ros.workload.scene import SceneGenerator, make_dataset, render_frame
from agra_ros.workload.scene_types import CLASS_NAMES, Frame, SceneParams
from agra_ros.workload.sources import (
    ClipSource,
    FrameSource,
    ImageFolderSource,
    SourceError,
    SyntheticSource,
    VideoFileSource,
    open_source,
)
from agra_ros.workload.trace import ClipPhase, Phase, Trace, TraceError, available_traces

__all__ = [
    "CLASS_NAMES",
    "ClipPhase",
    "ClipSource",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "Phase",
    "SceneGenerator",
    "SceneParams",
    "SourceError",
    "SyntheticSource",
    "Trace",
    "TraceError",
    "VideoFileSource",
    "available_traces",
    "make_dataset",
    "open_source",
    "render_frame",
]
