"""Training: config, losses, the training loop and classifier pretraining."""
