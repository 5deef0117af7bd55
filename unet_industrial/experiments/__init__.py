"""The libraries of the two experiment jobs.

`demo` (`python -m unet_industrial.demo`) and `study` (`python -m unet_industrial.study`).
"""
