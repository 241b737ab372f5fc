"""xtalgen.screen"""
