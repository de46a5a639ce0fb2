"""Ready-made example projects."""
