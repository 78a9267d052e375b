"""dirac/transformation"""
