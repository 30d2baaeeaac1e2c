# Read by Cython only, as threshold.pxd (its notes hold here): SeriesClock's attributes as
# slots of an extension type, each a Python object.
cdef class SeriesClock:
    cdef public object log_step, resolution, offset, off_grid, stretched, cadence, burst
    cdef public object share, held, slowed, taught_s
