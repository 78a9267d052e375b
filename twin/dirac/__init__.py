"""dirac"""
