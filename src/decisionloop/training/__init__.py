"""Training: preprocessing saved as JSON, trainers, and the train/test split."""
