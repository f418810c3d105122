"""Helpers of the facts: kubectl command builders and the quiet reader of secret output."""
