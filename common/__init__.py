"""emorec.common: the few pieces every stage shares (errors, atomic file writes, time helpers).

It sits below the four stages (``sentiment -> profiles -> recommender -> jobs``): any stage may
import it, and it imports none of them.
"""
