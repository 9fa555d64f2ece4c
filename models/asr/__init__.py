"""Transcribers: waveforms in, `TranscriptionResult`s (a `RichTranscript` or the reason there is none) out.

    pocketsphinx  offline English ASR, word times and confidences (`local` profile)
    qwen3-omni    Qwen3-Omni thinker prompted for speaker turns and vocal-event tags (`s2` profile)

Built through models.registry (family 'asr'); the protocol is models.protocols.Transcriber.
"""
