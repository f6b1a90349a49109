"""The state-wide load model and its simulation against one primary (docs/scaling.md)."""
