"""Sans-I/O protocol core: pure functions and state machines over bytes.

Nothing here performs I/O, reads a clock or imports ROS: time is always an argument.
"""
