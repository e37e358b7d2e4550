"""Vocabulary shared by every layer: Octavia's constants and exceptions."""
