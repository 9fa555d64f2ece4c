"""The actor that hosts curation stages, without Ray: same rows as the stages one after another, each stage set up
once and called in its own batch size; and how the stages are grouped into actor pools."""

import copy
import subprocess
import sys

import pytest
import torch

from curation.row import from_columns, to_columns
from curation.stages.decode import DecodeStage, input_rows
from curation.stages.pipeline import CurationPipeline
from curation.stages.quality import QualityStage
from curation.stages.segmentation import SegmentationStage
from pipelines.curate import StageActor, actor_class, actor_groups
from schemas.config import CurateConfig, layered
from tests.conftest import DATA

CLIP = DATA / "multispeaker" / "dev00.flac"


class Recording:
    """A real stage that also records its set-ups and the sizes of the batches it was called with."""

    def __init__(self, stage):
        self.stage, self.sizes, self.setups = stage, [], 0
        self.name, self.batch_size = stage.name, stage.batch_size

    def setup(self):
        self.setups += 1
        self.stage.setup()

    def __call__(self, rows):
        self.sizes.append(len(rows))
        return self.stage(rows)


def _config(*layers: dict) -> CurateConfig:
    return layered(CurateConfig, {"input": "in", "output": "out"}, *layers)


def _decoded(cfg):
    return DecodeStage(cfg.decode, cfg.decode.max_output_rate, cfg.decode.sample_rate)(
        input_rows([{"uri": str(CLIP), "index": 0, "unit": 0}])
    )


@pytest.fixture
def keep_torch_threads():
    """The actor sets torch's threads for its process: give this test process its own setting back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_the_actor_equals_the_stages_in_sequence_and_keeps_each_stage_batch_size(keep_torch_threads):
    cfg = _config(
        {
            # utterances as VAD finds them (not joined toward target_s): several rows
            "segmentation": {"min_s": 1.0, "target_s": 0, "resources": {"batch_size": 1}},
            "quality": {"resources": {"batch_size": 2}},
        }
    )
    segmentation, quality = Recording(SegmentationStage(cfg.segmentation)), Recording(QualityStage(cfg.quality))
    decoded = _decoded(cfg)
    actor = StageActor([segmentation, quality], threads=1)
    assert (segmentation.setups, quality.setups) == (1, 1) and torch.get_num_threads() == 1
    chained = from_columns(actor(to_columns(copy.deepcopy(decoded))))

    expected_segmentation, expected_quality = SegmentationStage(cfg.segmentation), QualityStage(cfg.quality)
    expected_segmentation.setup()
    expected_quality.setup()
    expected = expected_segmentation(decoded)
    expected = [out for k in range(0, len(expected), 2) for out in expected_quality(expected[k : k + 2])]
    assert chained == expected
    segments = len(chained)
    assert segments >= 3, "the clip should give several segments"
    assert segmentation.sizes == [1]
    assert all(n <= 2 for n in quality.sizes) and sum(quality.sizes) == segments
    assert (segmentation.setups, quality.setups) == (1, 1)  # once per actor, not per batch


def test_fusing_puts_every_model_stage_and_the_encoder_in_one_pool():
    cfg = _config()
    pipeline = CurationPipeline.from_config(cfg)
    fused = actor_groups(cfg, pipeline)
    assert [(name, setting) for name, setting, _, _ in fused] == [("ModelStages", "ray.fuse_stages")]
    assert [s.name for s in fused[0][2]] == ["segmentation", "separation", "quality", "transcription", "encode"]
    assert fused[0][2] == [*pipeline.models, pipeline.encode]
    assert fused[0][3] == cfg.ray.fuse_stages
    cfg = _config({"ray": {"fuse_stages": None}})
    pipeline = CurationPipeline.from_config(cfg)
    apart = actor_groups(cfg, pipeline)
    assert [name for name, *_ in apart] == ["Segmentation", "Separation", "Quality", "Transcription"]
    # each pool's setting is its stage's declared config key (the codec's is codec.resources)
    assert [setting for _, setting, _, _ in apart] == [f"{s.decl.config_key}.resources" for s in pipeline.models]
    codec = _config({"ray": {"fuse_stages": None}, "codec": {"enabled": True}})
    assert actor_groups(codec, CurationPipeline.from_config(codec))[-1][:2] == ("Codec", "codec.resources")
    assert [stages for _, _, stages, _ in apart] == [[s] for s in pipeline.models]
    assert [res for *_, res in apart] == [
        cfg.segmentation.resources,
        cfg.separation.resources,
        cfg.quality.resources,
        cfg.transcription.resources,
    ]


def test_actor_classes_are_named_for_their_stages():
    cls = actor_class("Separation")
    assert (
        issubclass(cls, StageActor)
        and cls.__name__ == cls.__qualname__ == "Separation"
        and cls.__module__ == "pipelines.curate"
    )


def test_the_driver_plans_the_stages_without_importing_torch_or_a_model_runtime():
    """The driver only plans and checks: torch, ONNX Runtime and pocketsphinx (~250 MB) belong in the actors."""
    code = (
        "import pickle, sys\n"
        "from jobs.config import curate_config\n"
        "from curation.stages.pipeline import CurationPipeline, decode_rate, preflight\n"
        "from pipelines.cluster_fit import NodeType, check_fit, pool_demands\n"
        "from pipelines.curate import actor_groups\n"
        "cfg = curate_config('local', direct={'input': 'in', 'output': 'out'})\n"
        "preflight(cfg); decode_rate(cfg); pipeline = CurationPipeline.from_config(cfg)\n"
        "pools = {setting: res for _, setting, _, res in actor_groups(cfg, pipeline)}\n"
        "check_fit(pool_demands(pools, cfg.decode.resources, False), [NodeType('node', 2, 0, 1)]); pickle.dumps(pipeline)\n"
        "sys.exit(sorted({'torch', 'onnxruntime', 'pocketsphinx'} & set(sys.modules)) or None)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=DATA.parents[1], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
