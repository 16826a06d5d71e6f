"""Test helpers shipped with Stratum: fake clock, fleet scenarios, factories."""
