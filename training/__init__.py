"""Training of the Dual-AR model, Ray-agnostic: shards to packed rows (data), the loss of Eq. 2-4 (losses), the loop
(trainer), checkpoints (checkpoint), MFU (flops), LoRA (lora), local and s3:// files (storage).
`training.trainer.train(config)` runs it in this process, alone or as one rank of torch.distributed."""
