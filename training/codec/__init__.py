"""Codec training (the report's Sections 2.1 and 4.1): the S2 codec as a GAN generator with three discriminators and
w2v-BERT 2.0 semantic distillation, beside the Dual-AR trainer and sharing its conventions.

  discriminators  multi-period, multi-resolution and multi-scale STFT discriminators
  losses          multi-scale mel, adversarial, feature matching, semantic distillation
  generator       the codec run with straight-through quantization, VQ losses, quantizer dropout, the semantic head
  teacher         the w2v-BERT 2.0 teacher's layer activations at the codec's frame rate
  data            clips from shards or folders, resampled once; the crops of a step
  evaluate        mel distance, STOI, PESQ, SI-SDR and codebook usage on held-out clips
  loop            train(config): the loop, checkpoints, resume, metrics, evaluation, the released-format export
"""
