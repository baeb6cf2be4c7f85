"""Tests of the models the runner builds (datacull/models/): built-in, zoos, custom."""
