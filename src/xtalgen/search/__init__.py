"""xtalgen.search"""
