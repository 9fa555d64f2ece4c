"""Speech-quality scorers: one interface, `score(waveforms, sample_rate) -> list[QualityScores]`.

  'dnsmos'   DnsmosScorer          DNSMOS P.835 + P.808 ONNX from the speechmos wheel (local profile, CPU)
  'w2vbert'  W2vBertQualityScorer  w2v-BERT 2.0 + trained MLP head (s2 profile, GPU); head from
                                   models.quality.training.train_quality_head

Built through models.registry (family 'quality'). Every scorer has `model_id`, `sample_rate` (16000), `dimensions`
(the QualityScores fields it fills) and is deterministic for the same input.
"""
