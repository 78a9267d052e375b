"""dirac/wms"""
