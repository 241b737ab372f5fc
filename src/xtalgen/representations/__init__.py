"""xtalgen.representations"""
