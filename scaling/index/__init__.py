"""Encoding texts into representations and searching them."""
