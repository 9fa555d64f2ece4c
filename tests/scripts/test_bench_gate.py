"""scripts/bench_gate's profile reading (the runs themselves take minutes: `python -m scripts.bench_gate`)."""

from scripts.bench_gate import profile_shares

SEP = "main (x.py:1);CurationStage.__call__ (curation/stages/base.py:95);SeparationStage.process_batch (curation/stages/separation.py:82)"
DNSMOS = (
    f"{SEP};SeparationStage._gate (curation/stages/separation.py:97);DnsmosScorer.score (models/quality/dnsmos.py:190)"
)
UNET = f"{SEP};Separator.vocals (models/separator/base.py:60);separate_stems (models/separator/spleeter_net.py:150);SpleeterUNet.forward (models/separator/spleeter_net.py:46)"


def test_profile_shares_count_the_separation_stages_samples_by_part(tmp_path):
    stacks = [
        (f"{DNSMOS};DnsmosScorer._run (models/quality/dnsmos.py:178);Session.run (onnxruntime/x.py:406)", 6),
        (
            f"{DNSMOS};DnsmosScorer._run (models/quality/dnsmos.py:179);DnsmosScorer.p808_features (models/quality/dnsmos.py:160)",
            1,
        ),
        (f"{UNET};dnnl_primitive_create (libdnnl.so)", 1),
        (f"{UNET};conv2d (libtorch.so)", 2),
        # not the separation stage: left out
        (
            "main (x.py:1);QualityStage.process_batch (curation/stages/quality.py:32);Session.run (onnxruntime/x.py:1)",
            5,
        ),
    ]
    path = tmp_path / "profile.txt"
    path.write_text("".join(f"{s} {n}\n" for s, n in stacks))
    shares = profile_shares(path)
    assert shares["samples"] == 10
    assert shares["DNSMOS (gate scores)"] == 0.7 and shares["DNSMOS networks (ONNX Runtime)"] == 0.6
    assert shares["Spleeter"] == shares["Spleeter U-Nets"] == 0.3 and shares["oneDNN primitive creation"] == 0.1
