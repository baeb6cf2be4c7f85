"""Tests of the methods: importance scores and samplers, their properties and their parity with the official code
(``parity/``)."""
