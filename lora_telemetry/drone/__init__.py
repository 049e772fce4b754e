"""The drone side: configuration, uplink transmitters and the send loop the drone node runs.

Nothing here imports rclpy: the ROS 2 node (`lora_telemetry.nodes.drone_node`) only wires
parameters in and topics out, so the loop can be tested on a simulated clock.
"""
