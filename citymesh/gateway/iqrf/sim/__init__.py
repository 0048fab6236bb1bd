"""A simulated IQRF mesh that answers iqrfpy requests with DPA bytes.

layout     floor plans and link qualities (Intel lab files or generated)
mesh       nodes, bonds, routing tree, delivery and latency
responder  DPA request bytes in, DPA response bytes out
transport  iqrfpy's ITransport on top of the responder
scenarios  ready-made meshes: austin (40 nodes) and city_block (200 nodes)
"""
