"""xtalgen.data"""
