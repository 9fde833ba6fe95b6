"""RNN Gradient Lab GUI: Qt views and the controller that owns the training worker."""
