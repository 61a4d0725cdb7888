"""Writers of the float IR to other formats (``nir``)."""
