"""xtalgen.relax"""
