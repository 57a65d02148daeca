"""kps-failed-task-cleaner: clears KPS failed key pair tasks (DeleteAllFailedTask) from FunctionGraph."""
