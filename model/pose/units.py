"""Length units, named once: everything on our disks and in our answers is millimetres (SPEC section 3)."""

MM_PER_M = 1000.0  # also the factor between the networks' metres and our millimetres
MM_PER_CM = 10.0  # BVH files of most rigs (Bandai's included)
MM_PER_INCH = 25.4
