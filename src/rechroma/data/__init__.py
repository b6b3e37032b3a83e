"""Training data: tar shards of photos, augmentation and old-photo degradations, packing folders."""
