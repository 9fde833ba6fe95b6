"""RNN Gradient Lab GUI: Qt views, the run session and the worker client (gui/worker_client.py) that owns the training worker."""
