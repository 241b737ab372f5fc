"""xtalgen.metrics"""
