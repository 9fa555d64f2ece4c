"""Speaker embedders: waveforms in, (n, dim) unit vectors out; cosine similarity compares speakers.

    resemblyzer  GE2E voice encoder, weights from the resemblyzer wheel (`local` profile)
    wavlm        WavLM x-vector head from transformers (`s2` profile)

Built through models.registry (family 'speaker'); the protocol is models.protocols.SpeakerEmbedder.
"""
