// Implementation lands with its module; see the header.
