"""The networks and what training them needs.

`unet` (the industrial UNet), `classifier`, `losses` and `metrics`.
"""
