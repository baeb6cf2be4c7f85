"""Tests of the data sets the runner loads (datacull/datasets/): built-in, custom, torchvision, Hugging Face, streamed."""
