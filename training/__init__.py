"""Training of the Dual-AR model, Ray-agnostic: shards to packed rows (data), the loss of Eq. 2-4 (losses), the loop
(trainer), checkpoints (checkpoint), MFU (flops), LoRA (lora). `training.trainer.train(config)` runs it."""
