"""The fused actor's chain of model stages, without Ray: same rows as the stages one after another, each
stage called in its own batch size."""

import functools

from curation.batch import COLUMNS, concat, slices
from curation.decode import DecodeStage, input_rows
from curation.quality import QualityStage
from curation.segmentation import SegmentationStage
from pipelines.stages import ModelStage, StageChain, actor_groups
from schemas.config import load_config
from tests.conftest import DATA

CLIP = DATA / "multispeaker" / "dev00.flac"


class Recording:
    """A real stage that also records the sizes of the batches it was called with."""

    def __init__(self, stage):
        self.stage, self.sizes = stage, []

    def __call__(self, batch):
        self.sizes.append(len(batch["key"]))
        return self.stage(batch)


def _config(**over):
    return load_config({"input": "in", "output": "out"}, over)


def _decoded(cfg):
    row = input_rows([{"uri": str(CLIP), "index": 0, "unit": 0}])[0]
    return concat(list(DecodeStage(cfg.decode, cfg.decode.sample_rate)({c: [row[c]] for c in COLUMNS})))


def test_chain_equals_the_stages_in_sequence_and_keeps_each_stage_batch_size():
    cfg = _config(segmentation={"min_s": 1.0, "resources": {"batch_size": 1}}, quality={"resources": {"batch_size": 2}})
    built = {}

    def recorded(name, factory):
        built[name] = Recording(factory())
        return built[name]

    stages = [
        ModelStage("segmentation", functools.partial(recorded, "segmentation", functools.partial(SegmentationStage, cfg.segmentation)), cfg.segmentation.resources),
        ModelStage("quality", functools.partial(recorded, "quality", functools.partial(QualityStage, cfg.quality)), cfg.quality.resources),
    ]
    batch = _decoded(cfg)
    chained = StageChain(stages)(batch)

    expected = SegmentationStage(cfg.segmentation)(batch)
    quality = QualityStage(cfg.quality)
    expected = concat([quality(part) for part in slices(expected, 2)])
    assert chained == expected
    segments = len(chained["key"])
    assert segments >= 3, "the clip should give several segments"
    assert built["segmentation"].sizes == [1]
    assert all(n <= 2 for n in built["quality"].sizes) and sum(built["quality"].sizes) == segments


def test_fusing_puts_every_model_stage_in_one_pool():
    fused = actor_groups(_config())
    assert [name for name, _, _ in fused] == ["ModelStages"]
    assert [s.name for s in fused[0][1].args[0]] == ["separation", "segmentation", "quality", "transcription", "encode"]
    assert fused[0][2] == _config().ray.fuse_stages
    apart = actor_groups(_config(ray={"fuse_stages": None}))
    assert [name for name, _, _ in apart] == ["Separation", "Segmentation", "Quality", "Transcription"]


def test_the_driver_plans_the_stages_without_importing_torch_or_a_model_runtime():
    """The driver only plans and checks: torch, ONNX Runtime and pocketsphinx (~250 MB) belong in the actors."""
    import subprocess
    import sys

    code = (
        "import sys; from schemas.config import load_config; from pipelines.curate import actor_groups, decode_rate, preflight;"
        "cfg = load_config('jobs/configs/local.yaml', {'input': 'in', 'output': 'out'}); preflight(cfg); decode_rate(cfg); actor_groups(cfg);"
        "sys.exit(sorted({'torch', 'onnxruntime', 'pocketsphinx'} & set(sys.modules)) or None)"
    )
    root = DATA.parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
