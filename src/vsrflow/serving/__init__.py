"""Model endpoints: the SageMaker-inference-toolkit handler, the server launcher and the client."""
