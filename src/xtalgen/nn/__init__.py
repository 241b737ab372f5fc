"""xtalgen.nn"""
