"""GRPO post-training of the Dual-AR model (the report, Section 4.3), Ray-agnostic.

advantages   Eq. 5: group-relative advantages without the standard deviation (Dr.GRPO)
losses       Eq. 6-8: the slow and fast policy losses with the k3 KL to the reference policy
rollout      prompts, G samples per prompt from the policy's sampler, the waveform cache
scoring      asynchronous scoring: decode, every reward on its own worker, R_i, while generation goes on
rewards      the rewards a run weighs (in-process, through the services, or the demo's learnable one)
loop         train_grpo: the loop, with checkpoints and exact resume
"""
