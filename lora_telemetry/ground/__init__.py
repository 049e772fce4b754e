"""The ground side: gateway configuration and the receive loop the ground node runs.

No rclpy here: `lora_telemetry.nodes.ground_node` wires this to ROS 2 topics.
"""
