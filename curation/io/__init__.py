"""Where data comes from and where it goes: storage (local and s3://), decoding, inputs, the run plan, keys, shards
and the dataset files built from them."""
